#pragma once

#include <memory>
#include <string>

#include "lorafed/export.hpp"
#include "lorafed/transport.hpp"

namespace lorafed {

// Endpoints inside this process: one mailbox per channel, frames passed by
// sharing ownership, never copied. The `inproc` transport is these; a
// transport between processes serves its in-process endpoints with them
// (the embedded broker's server side, "inproc://lorafed-broker-N").
// Endpoint names are one table per process, shared by every caller.

// Binds `endpoint`; throws Error when it is bound already.
LORAFED_API std::unique_ptr<Channel> bind_in_process(const std::string& endpoint);

// Connects to `endpoint` as `identity`, taking over a connection that had
// it; throws Error when nothing is bound there. A message sent to a peer
// that is not connected is dropped, as a ZeroMQ ROUTER drops it.
LORAFED_API std::unique_ptr<Channel> connect_in_process(const std::string& endpoint,
                                                        const std::string& identity);

}  // namespace lorafed
