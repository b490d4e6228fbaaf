target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/channel.cpp
    ${CMAKE_CURRENT_LIST_DIR}/channel.hpp
    ${CMAKE_CURRENT_LIST_DIR}/completions.cpp
    ${CMAKE_CURRENT_LIST_DIR}/completions.hpp
    ${CMAKE_CURRENT_LIST_DIR}/fork_server.cpp
    ${CMAKE_CURRENT_LIST_DIR}/fork_server.hpp
    ${CMAKE_CURRENT_LIST_DIR}/launch.cpp
    ${CMAKE_CURRENT_LIST_DIR}/launch.hpp
    ${CMAKE_CURRENT_LIST_DIR}/pool.cpp
    ${CMAKE_CURRENT_LIST_DIR}/pool_impl.hpp
    ${CMAKE_CURRENT_LIST_DIR}/supervisor.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_death.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_loop.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_start.cpp
    ${CMAKE_CURRENT_LIST_DIR}/worker_loop.hpp
)
