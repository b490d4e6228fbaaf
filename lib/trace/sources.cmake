target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/hooks.cpp
    ${CMAKE_CURRENT_LIST_DIR}/hooks.hpp
    ${CMAKE_CURRENT_LIST_DIR}/names.cpp
    ${CMAKE_CURRENT_LIST_DIR}/names.hpp
    ${CMAKE_CURRENT_LIST_DIR}/process_link.cpp
    ${CMAKE_CURRENT_LIST_DIR}/process_link.hpp
    ${CMAKE_CURRENT_LIST_DIR}/rank_link.cpp
    ${CMAKE_CURRENT_LIST_DIR}/rank_link.hpp
    ${CMAKE_CURRENT_LIST_DIR}/recorder.cpp
    ${CMAKE_CURRENT_LIST_DIR}/recorder.hpp
    ${CMAKE_CURRENT_LIST_DIR}/registry.cpp
    ${CMAKE_CURRENT_LIST_DIR}/registry.hpp
    ${CMAKE_CURRENT_LIST_DIR}/symbols.cpp
    ${CMAKE_CURRENT_LIST_DIR}/writer.cpp
    ${CMAKE_CURRENT_LIST_DIR}/writer.hpp
)
