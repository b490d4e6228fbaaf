target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/errors.cpp
    ${CMAKE_CURRENT_LIST_DIR}/job_memory.cpp
    ${CMAKE_CURRENT_LIST_DIR}/progress.cpp
    ${CMAKE_CURRENT_LIST_DIR}/run_loop.cpp
    ${CMAKE_CURRENT_LIST_DIR}/shared_state.cpp
    ${CMAKE_CURRENT_LIST_DIR}/spin.cpp
    ${CMAKE_CURRENT_LIST_DIR}/task_deadline.cpp
    ${CMAKE_CURRENT_LIST_DIR}/timer_service.cpp
)
