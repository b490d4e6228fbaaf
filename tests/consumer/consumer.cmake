# The consumer tests: install this build into a temporary prefix (fixture
# consumer.install), then build and run separate projects against it:
#   consumer.find_package    find_package(coexec COMPONENTS <what was built>)
#   consumer.missing_asio    COMPONENTS asio with Asio hidden: fails, saying why
#   consumer.pkg_config      `c++ main.cpp $(pkg-config --cflags --libs coexec)`
set(COEXEC_CONSUMER_DIR ${CMAKE_BINARY_DIR}/consumer-test)
set(COEXEC_CONSUMER_COMPONENTS "")
if(TARGET coexec::asio)
    list(APPEND COEXEC_CONSUMER_COMPONENTS asio)
endif()
if(TARGET coexec::boost_asio)
    list(APPEND COEXEC_CONSUMER_COMPONENTS boost_asio)
endif()
if(TARGET coexec::mpi)
    list(APPEND COEXEC_CONSUMER_COMPONENTS mpi)
endif()
string(REPLACE ";" "," COEXEC_CONSUMER_COMPONENTS_ARG "${COEXEC_CONSUMER_COMPONENTS}")

function(coexec_consumer_test name)
    add_test(NAME consumer.${name}
        COMMAND ${CMAKE_COMMAND}
            -DSTEP=${name}
            -DBUILD_DIR=${CMAKE_BINARY_DIR}
            -DWORK_DIR=${COEXEC_CONSUMER_DIR}
            -DSOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}
            -DGENERATOR=${CMAKE_GENERATOR}
            -DCXX=${CMAKE_CXX_COMPILER}
            -DCOMPONENTS=${COEXEC_CONSUMER_COMPONENTS_ARG}
            -DASIO_INCLUDE_DIR=${asio_INCLUDE_DIR}
            -DMPIEXEC=${MPIEXEC_EXECUTABLE}
            -P ${CMAKE_CURRENT_LIST_DIR}/run.cmake)
    set_tests_properties(consumer.${name} PROPERTIES TIMEOUT 300 LABELS "packaging")
endfunction()

coexec_consumer_test(install)
set_tests_properties(consumer.install PROPERTIES FIXTURES_SETUP coexec_installed)

coexec_consumer_test(find_package)
set(COEXEC_CONSUMER_PASS "consumer: 42")
foreach(component IN LISTS COEXEC_CONSUMER_COMPONENTS)
    string(APPEND COEXEC_CONSUMER_PASS ".*consumer_${component}: 42")
endforeach()
set_tests_properties(consumer.find_package PROPERTIES FIXTURES_REQUIRED coexec_installed
    PASS_REGULAR_EXPRESSION "${COEXEC_CONSUMER_PASS}")

if(TARGET coexec::asio)
    coexec_consumer_test(missing_asio)
    set_tests_properties(consumer.missing_asio PROPERTIES FIXTURES_REQUIRED coexec_installed
        PASS_REGULAR_EXPRESSION "missing_asio: refused with: .*asio\\.hpp was not found")
endif()

coexec_consumer_test(pkg_config)
set_tests_properties(consumer.pkg_config PROPERTIES FIXTURES_REQUIRED coexec_installed
    PASS_REGULAR_EXPRESSION "consumer: 42")
