# Cross-compiling toolchain for the ARM prebuilds (scripts/prebuild.js): Debian's cross compilers,
# one file for both targets, chosen by IOTTLY_TRIPLE (-D or the environment, which CMake's own
# compiler checks also see).
set(CMAKE_SYSTEM_NAME Linux)
if(NOT IOTTLY_TRIPLE)
  set(IOTTLY_TRIPLE "$ENV{IOTTLY_TRIPLE}")
endif()
if(IOTTLY_TRIPLE STREQUAL "aarch64-linux-gnu")
  set(CMAKE_SYSTEM_PROCESSOR aarch64)
elseif(IOTTLY_TRIPLE STREQUAL "arm-linux-gnueabihf")
  set(CMAKE_SYSTEM_PROCESSOR armv7l)
else()
  message(FATAL_ERROR "IOTTLY_TRIPLE must be aarch64-linux-gnu or arm-linux-gnueabihf, not '${IOTTLY_TRIPLE}'")
endif()
set(CMAKE_C_COMPILER ${IOTTLY_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${IOTTLY_TRIPLE}-g++)
# The cross compilers' libc and libstdc++ live under /usr/<triple>; never pick up the host's.
set(CMAKE_FIND_ROOT_PATH /usr/${IOTTLY_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
