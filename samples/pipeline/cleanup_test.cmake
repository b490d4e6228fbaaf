# cmake -P script for the CTest test samples.pipeline: runs the demo on a
# small corpus from an empty working directory with TMPDIR pointing at an
# empty directory, then checks that it worked and left nothing behind.
#   -DPIPELINE=<binary> -DWORK=<scratch directory for this test>
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/cwd ${WORK}/tmp)
set(ENV{TMPDIR} ${WORK}/tmp)
execute_process(COMMAND ${PIPELINE} --corpus-mb 4 --cpu-workers 2
    WORKING_DIRECTORY ${WORK}/cwd RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the pipeline demo failed (${rc})")
endif()
if(NOT out MATCHES "coexec pipeline: [0-9]+ files")
    message(FATAL_ERROR "the pipeline demo did not report its run")
endif()
file(GLOB_RECURSE left_in_cwd ${WORK}/cwd/*)
file(GLOB left_in_tmp ${WORK}/tmp/*)
if(left_in_cwd OR left_in_tmp)
    message(FATAL_ERROR "the pipeline demo left files behind: ${left_in_cwd} ${left_in_tmp}")
endif()
file(REMOVE_RECURSE ${WORK})
message("samples.pipeline: ran and cleaned up")
