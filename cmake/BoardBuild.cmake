# The board build: edgefusion-run cross-compiled for aarch64 (static, cmake/aarch64-linux-gnu.cmake)
# from this same source tree into ${PROJECT_BINARY_DIR}/aarch64, as part of every normal build, so
# the board tests (tests/board, run under qemu-aarch64) always test the current code. A missing
# cross compiler or qemu is a configure error, never a silently skipped board test.
find_program(EF_AARCH64_CXX aarch64-linux-gnu-g++)
find_program(EF_AARCH64_CC aarch64-linux-gnu-gcc)
find_program(EF_QEMU_AARCH64 qemu-aarch64)
if(NOT EF_AARCH64_CXX OR NOT EF_AARCH64_CC OR NOT EF_QEMU_AARCH64)
  message(FATAL_ERROR
    "The board tests need the aarch64 cross compiler and qemu-user "
    "(aarch64-linux-gnu-g++: ${EF_AARCH64_CXX}, qemu-aarch64: ${EF_QEMU_AARCH64}).\n"
    "Run scripts/setup.sh (as root) to install the Debian packages g++-aarch64-linux-gnu and "
    "qemu-user, or configure with -DEF_BUILD_TESTS=OFF.")
endif()

set(EF_BOARD_DIR ${PROJECT_BINARY_DIR}/aarch64)
set(EF_BOARD_RUNNER ${EF_BOARD_DIR}/app/edgefusion-run)

include(ExternalProject)
ExternalProject_Add(ef_board_aarch64
  SOURCE_DIR ${PROJECT_SOURCE_DIR}
  BINARY_DIR ${EF_BOARD_DIR}
  PREFIX ${PROJECT_BINARY_DIR}/aarch64-ep
  CMAKE_GENERATOR Ninja
  CMAKE_ARGS
    -DCMAKE_TOOLCHAIN_FILE=${PROJECT_SOURCE_DIR}/cmake/aarch64-linux-gnu.cmake
    -DCMAKE_BUILD_TYPE=Release
    -DEF_RUNNER_ONLY=ON
    -DEF_BUILD_TESTS=OFF
    -DEF_BUILD_GUI=OFF
    -DEF_WERROR=${EF_WERROR}
  BUILD_COMMAND ${CMAKE_COMMAND} --build ${EF_BOARD_DIR} --target edgefusion-run
  BUILD_ALWAYS ON  # the inner ninja decides what changed; edits to the sources rebuild
  BUILD_BYPRODUCTS ${EF_BOARD_RUNNER}
  INSTALL_COMMAND ""
  TEST_COMMAND "")
