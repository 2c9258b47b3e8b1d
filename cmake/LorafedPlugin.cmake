# lorafed_add_plugin(<name> KIND <strategy|model|transport> SOURCES <files...>)
#
# Builds lorafed-<kind>-<name>.so as a MODULE with hidden visibility, linked
# against the SDK, into the build tree's plugin folder, and installs it where
# an installed `lorafed` looks for plugins (DESIGN §3).
function(lorafed_add_plugin name)
  cmake_parse_arguments(ARG "" "KIND" "SOURCES" ${ARGN})
  if(NOT ARG_KIND MATCHES "^(strategy|model|transport)$")
    message(FATAL_ERROR "lorafed_add_plugin(${name}): KIND must be strategy, model or transport")
  endif()
  set(target lorafed-${ARG_KIND}-${name})
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE lorafed::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${target}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LIBRARY_OUTPUT_DIRECTORY "${LORAFED_BUILD_PLUGIN_DIR}")
  target_compile_definitions(${target} PRIVATE LORAFED_PLUGIN_NAME="${name}")
  install(TARGETS ${target} LIBRARY DESTINATION "${LORAFED_INSTALL_PLUGIN_DIR}")
  set(LORAFED_LAST_PLUGIN_TARGET ${target} PARENT_SCOPE)
endfunction()
