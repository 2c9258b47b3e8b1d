# cmake -DSOURCE_DIR=<lorafed source> [-DSIMULATE_CHANGE=ON] -P CheckAbiHash.cmake
#
# Fails when the public SDK headers (core/include/lorafed) differ from the
# ones recorded in cmake/abi-headers.sha256 together with kAbiVersion, so an
# interface change cannot slip in without someone deciding whether plugins
# built against the old headers still work (docs/writing-a-strategy.md §ABI).
# SIMULATE_CHANGE=ON hashes one extra byte: the test of this test.
set(header_dir "${SOURCE_DIR}/core/include/lorafed")
set(record_file "${SOURCE_DIR}/cmake/abi-headers.sha256")

file(GLOB_RECURSE headers RELATIVE "${header_dir}" "${header_dir}/*.hpp")
list(SORT headers)
set(content "")
foreach(header IN LISTS headers)
  file(READ "${header_dir}/${header}" text)
  string(APPEND content "${header}\n${text}")
endforeach()
if(SIMULATE_CHANGE)
  string(APPEND content " ")
endif()
string(SHA256 hash "${content}")

file(READ "${header_dir}/version.hpp" version_text)
string(REGEX MATCH "kAbiVersion = ([0-9]+)" _ "${version_text}")
set(abi_version "${CMAKE_MATCH_1}")

file(STRINGS "${record_file}" records REGEX "^[0-9]+ [0-9a-f]+$")
list(GET records -1 last)
string(REPLACE " " ";" last "${last}")
list(GET last 0 recorded_version)
list(GET last 1 recorded_hash)

if(NOT abi_version STREQUAL recorded_version)
  message(FATAL_ERROR "kAbiVersion is ${abi_version} but cmake/abi-headers.sha256 records "
    "${recorded_version}: add the line\n  ${abi_version} ${hash}\nto cmake/abi-headers.sha256")
endif()
if(NOT hash STREQUAL recorded_hash)
  message(FATAL_ERROR "The public SDK headers changed but kAbiVersion (${abi_version}) did not.\n"
    "If plugins built against the old headers would break (a virtual function added, removed or "
    "reordered; a struct's members; a signature), bump kAbiVersion in "
    "core/include/lorafed/version.hpp and add the line\n  <new version> <new hash>\n"
    "to cmake/abi-headers.sha256. If not (comments, new free functions, new headers), replace "
    "the last line's hash with\n  ${abi_version} ${hash}")
endif()
message(STATUS "ABI ${abi_version}: public headers match the record (${hash})")
