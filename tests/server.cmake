# test_server drives the samples/server binary as a child process; it gets the
# binary's path at compile time. tests/CMakeLists.txt does not build
# test_server when the samples are off (the asan/tsan presets), so this only
# wires it up when both exist. (samples/ is added after tests/, so the server
# target is referred to by name here and resolved at generate time.)
if(TARGET test_server)
    add_dependencies(test_server server)
    target_compile_definitions(test_server PRIVATE COEXEC_SERVER_BIN="$<TARGET_FILE:server>")
endif()
