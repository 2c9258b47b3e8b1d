#pragma once

#include <memory>
#include <string>

#include "lorafed/transport.hpp"

namespace lorafed {

// A plugin's transport as the runtime uses it: every exception a call into
// it throws leaves as a lorafed::Error (a type of the SDK, not the plugin)
// whose message names the plugin, so no exception object of the plugin's
// own outlives its library; every channel keeps the transport, and with it
// the library, alive until the channel is gone.
std::shared_ptr<Transport> attribute_transport(std::shared_ptr<Transport> transport,
                                               std::string plugin_name);

}  // namespace lorafed
