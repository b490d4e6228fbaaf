target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/epoll_reactor.cpp
    ${CMAKE_CURRENT_LIST_DIR}/reactor.cpp
    ${CMAKE_CURRENT_LIST_DIR}/reactor.hpp
    ${CMAKE_CURRENT_LIST_DIR}/run_loop_io.cpp
    ${CMAKE_CURRENT_LIST_DIR}/timer_heap.hpp
    ${CMAKE_CURRENT_LIST_DIR}/uring_reactor.cpp
)
