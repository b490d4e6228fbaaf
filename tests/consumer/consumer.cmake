# The consumer test: install this build into a temporary prefix, then
# configure, build and run a separate project that does find_package(coexec).
set(COEXEC_CONSUMER_DIR ${CMAKE_BINARY_DIR}/consumer-test)
add_test(NAME consumer.find_package
    COMMAND ${CMAKE_COMMAND}
        -DBUILD_DIR=${CMAKE_BINARY_DIR}
        -DWORK_DIR=${COEXEC_CONSUMER_DIR}
        -DSOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}
        -DGENERATOR=${CMAKE_GENERATOR}
        -DCXX=${CMAKE_CXX_COMPILER}
        -P ${CMAKE_CURRENT_LIST_DIR}/run.cmake)
set_tests_properties(consumer.find_package PROPERTIES TIMEOUT 300 LABELS "packaging"
    PASS_REGULAR_EXPRESSION "consumer: 42")
