# lib/mpi: mpi_pool over MPI ranks. Built into its own library, coexec_mpi
# (coexec::mpi), the only target that links MPI.
target_sources(coexec_mpi PRIVATE
    ${CMAKE_CURRENT_LIST_DIR}/client.cpp
    ${CMAKE_CURRENT_LIST_DIR}/client.hpp
    ${CMAKE_CURRENT_LIST_DIR}/environment.cpp
    ${CMAKE_CURRENT_LIST_DIR}/environment.hpp
    ${CMAKE_CURRENT_LIST_DIR}/handshake.cpp
    ${CMAKE_CURRENT_LIST_DIR}/handshake.hpp
    ${CMAKE_CURRENT_LIST_DIR}/link.cpp
    ${CMAKE_CURRENT_LIST_DIR}/link.hpp
    ${CMAKE_CURRENT_LIST_DIR}/progress.cpp
    ${CMAKE_CURRENT_LIST_DIR}/protocol.hpp
    ${CMAKE_CURRENT_LIST_DIR}/server.cpp
)
