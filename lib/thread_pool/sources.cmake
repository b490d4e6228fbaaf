target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/shutdown.cpp
    ${CMAKE_CURRENT_LIST_DIR}/thread_pool.cpp
)
