# cmake -P script, one STEP per CTest test (see consumer.cmake).
set(prefix ${WORK_DIR}/prefix)

function(run what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${what} failed (${rc}):\n${out}")
    endif()
    message("${out}")
endfunction()

if(STEP STREQUAL "install")
    file(REMOVE_RECURSE ${WORK_DIR})
    run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
    return()
endif()

string(REPLACE "," ";" COMPONENTS "${COMPONENTS}")
set(configure ${CMAKE_COMMAND} -S ${SOURCE_DIR} -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${prefix})

if(STEP STREQUAL "find_package")
    set(build ${WORK_DIR}/find_package)
    file(REMOVE_RECURSE ${build})
    string(REPLACE ";" "\\;" components_arg "${COMPONENTS}")
    run("configuring the consumer" ${configure} -B ${build} "-DCONSUMER_COMPONENTS=${components_arg}")
    run("building the consumer" ${CMAKE_COMMAND} --build ${build})
    run("the consumer" ${build}/consumer)
    foreach(component IN LISTS COMPONENTS)
        if(component STREQUAL "mpi")
            # A job of two ranks, with the Open MPI settings tests/mpi uses.
            run("consumer_mpi" ${CMAKE_COMMAND} -E env OMPI_ALLOW_RUN_AS_ROOT=1
                OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp
                ${MPIEXEC} --oversubscribe --bind-to none -n 2 ${build}/consumer_mpi)
        else()
            run("consumer_${component}" ${build}/consumer_${component})
        endif()
    endforeach()
elseif(STEP STREQUAL "missing_asio")
    # The consumer asks for the asio component on a machine where Asio's
    # headers cannot be found (their directory is hidden from find_path).
    set(build ${WORK_DIR}/missing_asio)
    file(REMOVE_RECURSE ${build})
    file(READ ${prefix}/lib/cmake/coexec/coexec-asio-targets.cmake ignored)  # the component exists
    execute_process(COMMAND ${configure} -B ${build} -DCONSUMER_COMPONENTS=asio
        -DCMAKE_IGNORE_PATH=${ASIO_INCLUDE_DIR}
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(rc EQUAL 0)
        message(FATAL_ERROR "configuring with the asio component and no Asio succeeded:\n${out}")
    endif()
    string(REGEX REPLACE "[ \n]+" " " out "${out}")
    message("missing_asio: refused with: ${out}")
elseif(STEP STREQUAL "pkg_config")
    set(build ${WORK_DIR}/pkg_config)
    file(REMOVE_RECURSE ${build})
    file(MAKE_DIRECTORY ${build})
    set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
    run("pkg-config" pkg-config --cflags --libs coexec)
    run("building with pkg-config" sh -c
        "\"${CXX}\" -std=c++20 \"${SOURCE_DIR}/main.cpp\" $(pkg-config --cflags --libs coexec) -o \"${build}/consumer\"")
    run("the consumer" ${build}/consumer)
else()
    message(FATAL_ERROR "unknown STEP ${STEP}")
endif()
