# Cross build for 64-bit Arm Linux with Debian's g++-aarch64-linux-gnu; test binaries run under
# qemu-user (qemu-aarch64 -L points its loader at the cross sysroot). QEMU_CPU picks the emulated
# CPU: its default, "max", has the dot product extension; QEMU_CPU=cortex-a53 has none.
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#     -DSLM_KERNELS_ONLY=ON && cmake --build build-aarch64 && ctest --test-dir build-aarch64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(SLM_CROSS_TRIPLE aarch64-linux-gnu)
set(SLM_CROSS_SYSROOT /usr/${SLM_CROSS_TRIPLE}
  CACHE PATH "Target root of the cross build, and qemu's -L")

set(CMAKE_C_COMPILER ${SLM_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${SLM_CROSS_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${SLM_CROSS_TRIPLE})

# Headers, libraries and packages from the target only (the sysroot, or Debian multiarch arm64
# packages under /usr/lib/aarch64-linux-gnu); programs (pkg-config, ninja) from the host.
set(CMAKE_FIND_ROOT_PATH ${SLM_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(SLM_QEMU_AARCH64 qemu-aarch64)
if(SLM_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SLM_QEMU_AARCH64} -L ${SLM_CROSS_SYSROOT})
endif()
