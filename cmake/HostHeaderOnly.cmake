# Cross builds (the aarch64 board runner): nlohmann_json is header-only, so the build host's copy
# (/usr/include/nlohmann from nlohmann-json3-dev) serves any target. The host's include dir itself
# must not reach the cross compiler (its glibc headers would shadow the target's), so the target
# nlohmann_json::nlohmann_json gets a private dir holding only a link to nlohmann/.
find_package(nlohmann_json 3 CONFIG QUIET)  # a copy inside the cross sysroot wins
if(nlohmann_json_FOUND)
  return()
endif()
find_path(EF_HOST_NLOHMANN_JSON_INCLUDE nlohmann/json.hpp
  PATHS /usr/include /usr/local/include NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH)
if(NOT EF_HOST_NLOHMANN_JSON_INCLUDE)
  message(FATAL_ERROR "nlohmann/json.hpp not found on the build host: run scripts/setup.sh "
                      "(Debian package nlohmann-json3-dev)")
endif()
set(_ef_json_dir ${PROJECT_BINARY_DIR}/host-header-only)
file(MAKE_DIRECTORY ${_ef_json_dir})
file(CREATE_LINK ${EF_HOST_NLOHMANN_JSON_INCLUDE}/nlohmann ${_ef_json_dir}/nlohmann SYMBOLIC)
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${_ef_json_dir})
message(STATUS "nlohmann_json: header-only from the build host (${EF_HOST_NLOHMANN_JSON_INCLUDE}/nlohmann)")
