# Toolchain for the board runner: Debian's aarch64-linux-gnu cross compiler (package
# g++-aarch64-linux-gnu), fully static so the binary runs on any aarch64 Linux and under
# qemu-aarch64 without a target sysroot. Used by cmake/BoardBuild.cmake with -DEF_RUNNER_ONLY=ON.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Libraries and headers only from the cross sysroot; build tools from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Header-only packages (nlohmann_json) come from the host: see cmake/HostHeaderOnly.cmake.

set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# Emulated runs (tests, try_run) go through qemu.
find_program(EF_QEMU_AARCH64 qemu-aarch64)
if(EF_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${EF_QEMU_AARCH64})
endif()
