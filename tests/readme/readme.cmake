# The documentation's C++ examples, compiled and run: one executable and one
# CTest test (label "docs") per ```cpp block of README.md and docs/*.md,
# extracted at configure time by extract_snippets.py (the Markdown files are
# configure dependencies, so editing one re-extracts). Tests are named after
# the block's first line ("docs: README.md:70", "docs: docs/api.md:76"). A
# block that is only a piece of a program says so in a first-line comment
# containing "fragment" and is skipped. A snippet gets the target of what it includes:
# <coexec/asio...> coexec::asio, <coexec/boost_asio...> coexec::boost_asio,
# <coexec/mpi_pool.hpp> coexec::mpi (and runs as an MPI job of 3 ranks).
# A snippet whose target is not built here is not tested (a STATUS line says
# so); every other one must build, so one that stops compiling fails the build.
find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_FOUND)
    message(STATUS "documentation examples: not tested (needs python3 to extract them)")
    return()
endif()
file(GLOB COEXEC_DOC_PAGES CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/docs/*.md)
set(COEXEC_DOC_FILES README.md ${COEXEC_DOC_PAGES})
list(TRANSFORM COEXEC_DOC_FILES PREPEND ${PROJECT_SOURCE_DIR}/ OUTPUT_VARIABLE COEXEC_DOC_PATHS)
set(COEXEC_SNIPPET_DIR ${CMAKE_CURRENT_BINARY_DIR}/doc_examples)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
    ${COEXEC_DOC_PATHS} ${CMAKE_CURRENT_LIST_DIR}/extract_snippets.py)
execute_process(
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/extract_snippets.py
        ${PROJECT_SOURCE_DIR} ${COEXEC_SNIPPET_DIR} ${COEXEC_DOC_FILES}
    OUTPUT_VARIABLE snippets RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "extracting the documentation's C++ examples failed")
endif()
string(REPLACE "\n" ";" snippets "${snippets}")
foreach(entry IN LISTS snippets)
    string(REPLACE "|" ";" entry "${entry}")
    list(GET entry 0 snippet)
    list(GET entry 1 origin)
    string(REGEX REPLACE "\\.cpp$" "" target "doc_${snippet}")
    file(READ ${COEXEC_SNIPPET_DIR}/${snippet} text)
    set(libs coexec::coexec)
    set(launcher "")
    foreach(pair "boost_asio/;boost_asio" "boost_asio\\.hpp;boost_asio" "asio/;asio"
                 "asio\\.hpp;asio" "mpi_pool\\.hpp;mpi")
        list(GET pair 0 header)
        list(GET pair 1 component)
        if(text MATCHES "#include <coexec/${header}")
            list(APPEND libs coexec::${component})
        endif()
    endforeach()
    list(REMOVE_DUPLICATES libs)
    set(missing "")
    foreach(lib IN LISTS libs)
        if(NOT TARGET ${lib})
            list(APPEND missing ${lib})
        endif()
    endforeach()
    if(missing)
        message(STATUS "documentation example ${origin}: not tested (${missing} not built)")
        continue()
    endif()
    add_executable(${target} ${COEXEC_SNIPPET_DIR}/${snippet})
    target_link_libraries(${target} PRIVATE ${libs})
    coexec_target_options(${target})
    if(coexec::mpi IN_LIST libs)
        set(launcher ${PROJECT_SOURCE_DIR}/tests/mpi/mpi_launch.sh ${MPIEXEC_EXECUTABLE} 3)
    endif()
    add_test(NAME "docs: ${origin}" COMMAND ${launcher} $<TARGET_FILE:${target}>)
    set_tests_properties("docs: ${origin}" PROPERTIES TIMEOUT 120 LABELS "docs")
endforeach()
