# The native helper (src/native/): built by scripts/build-native.mjs at `npm install`, optional.
{
  "targets": [
    {
      "target_name": "autopilotd_native",
      "sources": ["src/native/autopilotd_native.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-O2"]
    }
  ]
}
