target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/process_sync.cpp
    ${CMAKE_CURRENT_LIST_DIR}/shared_buffer.cpp
    ${CMAKE_CURRENT_LIST_DIR}/shared_queue_core.cpp
)
