# Header hygiene: cereal only where values are serialized.
#
# The serialization library is heavy to compile and only process_pool,
# shared_queue and coexec/serializable.hpp need it. Each test preprocesses a
# translation unit that includes only the given public headers and fails if
# a cereal header appears among its dependencies; the control case
# (process_pool.hpp) must show cereal, so a change in the compiler's output
# cannot make the check pass vacuously.
#
# This file has two roles: include()d by tests/CMakeLists.txt it declares the
# tests; run with `cmake -P` it is the checker each test invokes.

if(CMAKE_SCRIPT_MODE_FILE)
    # --- checker: -DCXX=... -DHEADERS=a|b -DINCLUDES=a|b -DWORK_DIR=... -DEXPECT=absent|present
    string(REPLACE "|" ";" headers "${HEADERS}")
    string(REPLACE "|" ";" include_dirs "${INCLUDES}")
    set(include_flags "")
    foreach(dir IN LISTS include_dirs)
        if(dir)
            list(APPEND include_flags "-I${dir}")
        endif()
    endforeach()

    # Returns in `out` the cereal headers the TU made of `hdrs` reads.
    function(cereal_deps out hdrs)
        set(source "")
        foreach(header IN LISTS hdrs)
            string(APPEND source "#include <${header}>\n")
        endforeach()
        string(SHA1 stem "${hdrs}")
        file(MAKE_DIRECTORY "${WORK_DIR}")
        set(tu "${WORK_DIR}/${stem}.cpp")
        file(WRITE "${tu}" "${source}")
        # -M lists every header the TU reads, system headers included.
        execute_process(
            COMMAND "${CXX}" -std=c++20 -M ${include_flags} "${tu}"
            RESULT_VARIABLE result
            OUTPUT_VARIABLE deps
            ERROR_VARIABLE errors)
        if(NOT result EQUAL 0)
            message(FATAL_ERROR "cannot preprocess ${hdrs}:\n${errors}")
        endif()
        string(REGEX MATCHALL "[^ \t\n\\\\]*/cereal/[^ \t\n\\\\]*" found "${deps}")
        set(${out} "${found}" PARENT_SCOPE)
    endfunction()

    cereal_deps(cereal_headers "${headers}")
    list(LENGTH cereal_headers count)
    if(EXPECT STREQUAL "absent" AND count GREATER 0)
        set(culprits "")
        foreach(header IN LISTS headers)
            cereal_deps(one "${header}")
            if(one)
                list(APPEND culprits "${header}")
            endif()
        endforeach()
        list(GET cereal_headers 0 first)
        message(FATAL_ERROR "${culprits} pull(s) in cereal (${count} headers, the first: "
                            "${first}); include coexec/detail/codec/* only where values are "
                            "serialized")
    endif()
    if(EXPECT STREQUAL "present" AND count EQUAL 0)
        message(FATAL_ERROR "${HEADERS} shows no cereal header: the check cannot see them")
    endif()
    message(STATUS "${HEADERS}: ${count} cereal headers (expected ${EXPECT})")
    return()
endif()

# --- declaration (configure time)
# coexec_no_cereal_test(<name> <absent|present> <header>...)
function(coexec_no_cereal_test name expect)
    string(REPLACE ";" "|" headers "${ARGN}")
    add_test(NAME codec.${name}
        COMMAND ${CMAKE_COMMAND}
            -DCXX=${CMAKE_CXX_COMPILER}
            -DHEADERS=${headers}
            "-DINCLUDES=$<JOIN:$<TARGET_PROPERTY:coexec::coexec,INTERFACE_INCLUDE_DIRECTORIES>,|>|$<JOIN:$<TARGET_PROPERTY:cereal::cereal,INTERFACE_INCLUDE_DIRECTORIES>,|>"
            -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/no_cereal
            -DEXPECT=${expect}
            -P ${CMAKE_CURRENT_FUNCTION_LIST_FILE})
    set_tests_properties(codec.${name} PROPERTIES LABELS "packaging" TIMEOUT 120)
endfunction()

coexec_no_cereal_test(no_cereal.thread_pool absent coexec/thread_pool.hpp)
coexec_no_cereal_test(no_cereal.future_task absent coexec/future.hpp coexec/task.hpp)
# Every other public header, except those that send values to another process
# (and asio.hpp, which needs Asio on the include path).
set(coexec_serializing_headers
    asio.hpp coexec.hpp mpi_pool.hpp process_pool.hpp register_exception.hpp serializable.hpp
    shared_queue.hpp)
file(GLOB coexec_public_headers CONFIGURE_DEPENDS
    RELATIVE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/include/coexec/*.hpp)
set(coexec_plain_headers "")
foreach(header IN LISTS coexec_public_headers)
    get_filename_component(leaf ${header} NAME)
    if(NOT leaf IN_LIST coexec_serializing_headers)
        list(APPEND coexec_plain_headers ${header})
    endif()
endforeach()
coexec_no_cereal_test(no_cereal.other_public_headers absent ${coexec_plain_headers})
coexec_no_cereal_test(no_cereal.control present coexec/process_pool.hpp)
