# process_pool test helpers: a child program for the "parent SIGKILLed" test.
add_executable(process_pool_orphan ${CMAKE_CURRENT_LIST_DIR}/helpers/process_pool_orphan.cpp)
target_link_libraries(process_pool_orphan PRIVATE coexec::coexec)
coexec_target_options(process_pool_orphan)
if(TARGET test_process_pool_faults)
    add_dependencies(test_process_pool_faults process_pool_orphan)
    target_compile_definitions(test_process_pool_faults PRIVATE
        COEXEC_ORPHAN_HELPER="$<TARGET_FILE:process_pool_orphan>")
endif()
