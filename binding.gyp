{
  # The same sources as CMakeLists.txt, for machines with a compiler but no CMake.
  "targets": [
    {
      "target_name": "iottly_native",
      "sources": [
        "native/binding.cc",
        "native/io_loop.cc",
        "native/line_splitter.cc",
        "native/native_transport.cc",
        "native/outbound_queue.cc",
        "native/path_watch.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "ldflags": ["-pthread"]
    }
  ]
}
