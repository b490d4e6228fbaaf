target_sources(coexec PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/archive.cpp
    ${CMAKE_CURRENT_LIST_DIR}/byte_buffers.cpp
    ${CMAKE_CURRENT_LIST_DIR}/code_address.cpp
    ${CMAKE_CURRENT_LIST_DIR}/exceptions.cpp
    ${CMAKE_CURRENT_LIST_DIR}/module_identity.cpp
)
