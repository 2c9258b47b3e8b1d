#pragma once

#include <string_view>

namespace lorafed::cli::templates {

// The files `lorafed new` writes, with @NAME@ for the plugin's name.
std::string_view cmake_lists();
std::string_view readme();
std::string_view strategy_source();
std::string_view model_source();
std::string_view transport_source();
// A federation that runs the new plugin: @STRATEGY@, @MODEL@, @TRANSPORT@.
std::string_view federation_config();

}  // namespace lorafed::cli::templates
