# The compilers coexec supports, said in one sentence to whoever tries another.
# Used by coexec's own CMakeLists.txt (a fatal error at configure time) and by
# the installed coexec-config.cmake (find_package(coexec) then fails with the
# same sentence), so a consumer meets it too.
#
# coexec_unsupported_compiler(<out-var>): sets <out-var> to the sentence, or
# to "" when CMAKE_CXX_COMPILER_ID/VERSION name a supported compiler.
function(coexec_unsupported_compiler out)
    set(id "${CMAKE_CXX_COMPILER_ID}")
    set(version "${CMAKE_CXX_COMPILER_VERSION}")
    set(why "")
    if(id STREQUAL "GNU" AND version VERSION_LESS 12)
        set(why "coexec needs GCC 12 or later (or Clang 16 or later); this is GCC ${version}.")
    elseif(id STREQUAL "Clang" AND version VERSION_LESS 16)
        set(why "coexec needs Clang 16 or later (or GCC 12 or later); this is Clang ${version}, \
which fails inside libstdc++'s <ranges> (Debian 12's default clang++ is 14: use clang++-16).")
    elseif(NOT id STREQUAL "GNU" AND NOT id STREQUAL "Clang")
        set(why "coexec supports GCC 12 or later and Clang 16 or later; this is ${id} ${version}.")
    endif()
    set(${out} "${why}" PARENT_SCOPE)
endfunction()
