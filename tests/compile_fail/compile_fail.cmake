# Compile-failure tests: misuse that must not compile, with a readable message.
#
# Each tests/compile_fail/<name>.cpp becomes the CTest test compile_fail.<name>,
# which compiles the file (syntax only) at test time and passes when the
# compiler fails AND its first error contains the text of the file's
# "// expect: <text>" line — so a message buried under a page of unrelated
# template errors counts as a failure too.
#
# This file has two roles: include()d by tests/CMakeLists.txt it declares the
# tests; run with `cmake -P` it is the checker each test invokes.

if(CMAKE_SCRIPT_MODE_FILE)
    # --- checker: -DCXX=... -DSOURCE=... -DINCLUDES=a|b|c
    file(STRINGS "${SOURCE}" expect_lines REGEX "^// expect: ")
    if(NOT expect_lines)
        message(FATAL_ERROR "${SOURCE} has no '// expect: <message>' line")
    endif()
    list(GET expect_lines 0 expected)
    string(REGEX REPLACE "^// expect: " "" expected "${expected}")

    set(include_flags "")
    string(REPLACE "|" ";" include_dirs "${INCLUDES}")
    foreach(dir IN LISTS include_dirs)
        if(dir)
            list(APPEND include_flags "-I${dir}")
        endif()
    endforeach()

    execute_process(
        COMMAND "${CXX}" -std=c++20 -fsyntax-only ${include_flags} "${SOURCE}"
        RESULT_VARIABLE result
        OUTPUT_VARIABLE output
        ERROR_VARIABLE output)
    if(result EQUAL 0)
        message(FATAL_ERROR "${SOURCE} compiled, but it must be rejected with: ${expected}")
    endif()
    string(REGEX MATCH "error: [^\n]*" first_error "${output}")
    string(FIND "${first_error}" "${expected}" found)
    if(found EQUAL -1)
        message(FATAL_ERROR "${SOURCE} was rejected, but its first error is not the expected "
                            "one.\nExpected: ${expected}\nFirst: ${first_error}\n"
                            "Full output:\n${output}")
    endif()
    message(STATUS "rejected as expected: ${first_error}")
    return()
endif()

# --- declaration (configure time)
file(GLOB COEXEC_COMPILE_FAIL_SOURCES CONFIGURE_DEPENDS
    ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
foreach(src IN LISTS COEXEC_COMPILE_FAIL_SOURCES)
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME compile_fail.${name}
        COMMAND ${CMAKE_COMMAND}
            -DCXX=${CMAKE_CXX_COMPILER}
            -DSOURCE=${src}
            "-DINCLUDES=$<JOIN:$<TARGET_PROPERTY:coexec::coexec,INTERFACE_INCLUDE_DIRECTORIES>,|>|$<JOIN:$<TARGET_PROPERTY:cereal::cereal,INTERFACE_INCLUDE_DIRECTORIES>,|>"
            -P ${CMAKE_CURRENT_LIST_FILE})
    set_tests_properties(compile_fail.${name} PROPERTIES
        LABELS "compile_fail" TIMEOUT 120)
endforeach()
