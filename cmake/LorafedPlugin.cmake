# lorafed_add_plugin(<name> KIND <strategy|model|transport> SOURCES <files...>)
#
# Builds lorafed-<kind>-<name>.so as a MODULE with hidden visibility (only the
# two symbols of the LORAFED_*_PLUGIN macro are exported), C++20, linked
# against the SDK, into LORAFED_BUILD_PLUGIN_DIR, and installs it where an
# installed `lorafed` looks for plugins (docs/architecture.md, "Plugins"). The same helper serves
# the built-in plugins and, through find_package(lorafed), out-of-tree ones.
function(lorafed_add_plugin name)
  cmake_parse_arguments(ARG "" "KIND" "SOURCES" ${ARGN})
  if(NOT ARG_KIND MATCHES "^(strategy|model|transport)$")
    message(FATAL_ERROR "lorafed_add_plugin(${name}): KIND must be strategy, model or transport")
  endif()
  if(NOT name MATCHES "^[a-z0-9_]+$")
    message(FATAL_ERROR "lorafed_add_plugin(${name}): a plugin name is lower-case letters, digits and _")
  endif()
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "lorafed_add_plugin(${name}): SOURCES is empty")
  endif()
  set(target lorafed-${ARG_KIND}-${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE lorafed::sdk)
  target_compile_features(${target} PRIVATE cxx_std_20)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${target}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON
    # Installed next to liblorafed (<prefix>/lib/lorafed/plugins → <prefix>/lib).
    INSTALL_RPATH "$ORIGIN/../.."
    LIBRARY_OUTPUT_DIRECTORY "${LORAFED_BUILD_PLUGIN_DIR}")
  install(TARGETS ${target} LIBRARY DESTINATION "${LORAFED_INSTALL_PLUGIN_DIR}")
  # Every plugin of this build, for whatever must depend on all of them.
  set_property(GLOBAL APPEND PROPERTY LORAFED_PLUGIN_TARGETS ${target})
  set(LORAFED_LAST_PLUGIN_TARGET ${target} PARENT_SCOPE)
endfunction()
