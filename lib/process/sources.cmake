target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/channel.cpp
    ${CMAKE_CURRENT_LIST_DIR}/channel.hpp
    ${CMAKE_CURRENT_LIST_DIR}/launch.cpp
    ${CMAKE_CURRENT_LIST_DIR}/launch.hpp
    ${CMAKE_CURRENT_LIST_DIR}/process_pool.cpp
)
