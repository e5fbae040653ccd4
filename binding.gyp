{
  # For machines with a compiler but no CMake. The sources are native/sources.txt, as for CMakeLists.txt
  # (gyp runs the command in this directory and splits its output on whitespace).
  "targets": [
    {
      "target_name": "iottly_native",
      "sources": [
        "<!@(node -p \"require('fs').readFileSync('native/sources.txt', 'utf8').split('\\n').filter((l) => /^[^#\\s]/.test(l)).join(' ')\")"
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
