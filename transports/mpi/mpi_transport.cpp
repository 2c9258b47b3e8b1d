// The `mpi` transport: the processes of one `mpirun` job (Open MPI).
//
// Process (rank) 0 binds: the server and its broker run there. Every other
// rank connects to it, one connection per process. [transport] endpoint is
// not an address here: whatever it says, rank 0 of the job is the endpoint.
// Endpoints that start with inproc:// stay in the process (the embedded
// broker's server side) and are the SDK's in-process channels.
//
// On the wire (docs/deployment.md §"Across machines with MPI"), a message is
// one header and then its frames, in order, from one rank to another:
//   header: u64 frame count, u64 byte size per frame, then the sender's
//           identity (to rank 0) or nothing (from rank 0), native byte order
//           (every rank runs the same build);
//   frames: each in chunks of at most 1 GiB (MPI counts are ints).
// Headers and frames have their own tags, so a receiver probes for a header
// and then takes that sender's frames, which MPI delivers in order.
//
// MPI is initialised on first use and finalised when the last channel and
// transport are gone; after a failure (an exception in flight) it is left
// unfinalised, so the process exits non-zero and mpirun ends the job rather
// than waiting for ranks that will never finalise.
#include <mpi.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "lorafed/error.hpp"
#include "lorafed/in_process_channels.hpp"
#include "lorafed/plugin.hpp"

namespace {

using lorafed::Error;
using lorafed::Frame;
using lorafed::Message;

constexpr int kToBoundHeader = 1;
constexpr int kToBoundFrame = 2;
constexpr int kToConnectedHeader = 3;
constexpr int kToConnectedFrame = 4;
constexpr int kBoundRank = 0;

constexpr std::size_t kChunkBytes = std::size_t{1} << 30;
// Bounds on what a header may announce, checked before anything is
// allocated. The broker applies the federation's own limits afterwards.
constexpr std::uint64_t kMaxFrames = 1 << 16;
constexpr std::uint64_t kMaxMessageBytes = std::uint64_t{1} << 36;  // 64 GiB
constexpr std::size_t kMaxIdentityBytes = 1024;

bool in_process(const std::string& endpoint) {
  return endpoint.starts_with("inproc://");
}

std::string error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "error " + std::to_string(code);
  return std::string(text, static_cast<std::size_t>(length));
}

void check(int code, const char* call) {
  if (code != MPI_SUCCESS)
    throw Error(std::string("mpi transport: ") + call + ": " + error_text(code));
}

// MPI in this process: one per process, shared by the transport and its
// channels. Every MPI call goes through `mutex`, so MPI_THREAD_SERIALIZED
// is all it needs.
class Session {
 public:
  static std::shared_ptr<Session> get() {
    static std::mutex mutex;
    static std::weak_ptr<Session> current;
    static bool finalized = false;
    std::lock_guard lock(mutex);
    if (auto session = current.lock()) return session;
    if (finalized) {
      throw Error(
          "mpi transport: MPI was finalised in this process and cannot start again "
          "(one federation per process)");
    }
    auto session = std::shared_ptr<Session>(new Session(), [](Session* ended) {
      finalized = true;
      delete ended;
    });
    current = session;
    return session;
  }

  ~Session() {
    if (std::uncaught_exceptions() > 0) {
      spdlog::warn("mpi transport: rank {} failed: MPI is left unfinalised, so mpirun ends the job",
                   rank_);
      return;
    }
    MPI_Comm_free(&comm_);
    if (initialized_here_) MPI_Finalize();
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::mutex& mutex() { return mutex_; }
  MPI_Comm comm() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  // One bound and one connected channel per process at most.
  void claim(bool& slot, const char* what) {
    std::lock_guard lock(mutex_);
    if (slot) {
      throw Error(std::string("mpi transport: rank ") + std::to_string(rank_) + " already has " +
                  what + " (one per process; host many clients over one with --clients)");
    }
    slot = true;
  }
  bool bound = false;
  bool connected = false;

 private:
  Session() {
    int ready = 0;
    check(MPI_Initialized(&ready), "MPI_Initialized");
    if (!ready) {
      int provided = 0;
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
      initialized_here_ = true;
      if (provided < MPI_THREAD_SERIALIZED) {
        MPI_Finalize();
        throw Error(
            "mpi transport: this MPI library cannot be called from several threads "
            "(MPI_THREAD_SERIALIZED)");
      }
    }
    check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  std::mutex mutex_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  bool initialized_here_ = false;
};

// Sends in flight: their requests and what must live until they complete.
class Outbox {
 public:
  // Called with the session's mutex held.
  void post(MPI_Comm comm, int destination, int header_tag, int frame_tag,
            std::vector<std::byte> header, std::vector<Frame> frames) {
    Pending pending;
    pending.header = std::move(header);
    pending.frames = std::move(frames);
    start(comm, pending.header.data(), pending.header.size(), destination, header_tag, pending);
    for (const Frame& frame : pending.frames) {
      std::size_t offset = 0;
      do {
        const std::size_t chunk = std::min(kChunkBytes, frame.size - offset);
        start(comm, frame.data + offset, chunk, destination, frame_tag, pending);
        offset += chunk;
      } while (offset < frame.size);
    }
    pending_.push_back(std::move(pending));
  }

  // Forgets the sends that completed. Called with the session's mutex held.
  void progress() {
    std::erase_if(pending_, [](Pending& pending) {
      int done = 0;
      check(MPI_Testall(static_cast<int>(pending.requests.size()), pending.requests.data(), &done,
                        MPI_STATUSES_IGNORE),
            "MPI_Testall");
      return done != 0;
    });
  }

  // Waits up to `limit` for every send to complete; false if some did not.
  bool drain(std::mutex& mutex, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      {
        std::lock_guard lock(mutex);
        progress();
        if (pending_.empty()) return true;
      }
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::size_t size() const { return pending_.size(); }

 private:
  struct Pending {
    std::vector<std::byte> header;
    std::vector<Frame> frames;
    std::vector<MPI_Request> requests;
  };

  static void start(MPI_Comm comm, const std::byte* data, std::size_t size, int destination,
                    int tag, Pending& pending) {
    MPI_Request request = MPI_REQUEST_NULL;
    check(MPI_Isend(data, static_cast<int>(size), MPI_BYTE, destination, tag, comm, &request),
          "MPI_Isend");
    pending.requests.push_back(request);
  }

  std::deque<Pending> pending_;
};

std::vector<std::byte> encode_header(const std::vector<Frame>& frames,
                                     const std::string& identity) {
  std::vector<std::byte> header((1 + frames.size()) * sizeof(std::uint64_t) + identity.size());
  std::byte* at = header.data();
  const auto put = [&at](std::uint64_t value) {
    std::memcpy(at, &value, sizeof value);
    at += sizeof value;
  };
  put(frames.size());
  for (const Frame& frame : frames) put(frame.size);
  std::memcpy(at, identity.data(), identity.size());
  return header;
}

// One channel's end of the job: sends with its outbox, receives by polling.
class MpiChannel final : public lorafed::Channel {
 public:
  // The bound channel (rank 0) receives from any rank and replies to the
  // rank an identity was last heard from; a connected one talks to rank 0.
  MpiChannel(std::shared_ptr<Session> session, bool bound, std::string identity)
      : session_(std::move(session)), bound_(bound), identity_(std::move(identity)) {}
  ~MpiChannel() override { close(); }

  void send(Message message) override {
    if (closed_) throw Error("mpi transport: send on a closed channel");
    int destination = kBoundRank;
    if (bound_) {
      const auto found = ranks_.find(message.peer);
      if (found == ranks_.end()) {
        spdlog::debug("mpi transport: no peer '{}', message dropped", message.peer);
        return;
      }
      destination = found->second;
    }
    std::vector<std::byte> header = encode_header(message.frames, bound_ ? "" : identity_);
    std::lock_guard lock(session_->mutex());
    outbox_.progress();
    outbox_.post(session_->comm(), destination, bound_ ? kToConnectedHeader : kToBoundHeader,
                 bound_ ? kToConnectedFrame : kToBoundFrame, std::move(header),
                 std::move(message.frames));
  }

  std::optional<Message> receive(std::chrono::milliseconds timeout) override {
    if (closed_) throw Error("mpi transport: receive on a closed channel");
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto pause = std::chrono::microseconds(20);
    while (true) {
      {
        std::lock_guard lock(session_->mutex());
        outbox_.progress();
        if (auto message = take_one()) return message;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return std::nullopt;
      // Polls back off to a millisecond: training on the same cores
      // (mpirun --oversubscribe) keeps its time.
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::microseconds(1000));
    }
  }

  void close() override {
    if (closed_) return;
    closed_ = true;
    if (!outbox_.drain(session_->mutex(), std::chrono::seconds(10))) {
      spdlog::warn("mpi transport: rank {}: {} messages still unsent at close", session_->rank(),
                   outbox_.size());
    }
  }

 private:
  // A whole message if a header is waiting, else nullopt. Mutex held.
  std::optional<Message> take_one() {
    const int source = bound_ ? MPI_ANY_SOURCE : kBoundRank;
    const int header_tag = bound_ ? kToBoundHeader : kToConnectedHeader;
    const int frame_tag = bound_ ? kToBoundFrame : kToConnectedFrame;
    int waiting = 0;
    MPI_Status status;
    check(MPI_Iprobe(source, header_tag, session_->comm(), &waiting, &status), "MPI_Iprobe");
    if (!waiting) return std::nullopt;
    const int sender = status.MPI_SOURCE;
    int count = 0;
    check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
    std::vector<std::byte> header(static_cast<std::size_t>(count));
    check(MPI_Recv(header.data(), count, MPI_BYTE, sender, header_tag, session_->comm(),
                   MPI_STATUS_IGNORE),
          "MPI_Recv");

    const auto refuse = [sender](const std::string& why) -> Error {
      return Error("mpi transport: rank " + std::to_string(sender) + " sent a bad header: " + why);
    };
    std::uint64_t frame_count = 0;
    if (header.size() < sizeof frame_count) throw refuse("shorter than its frame count");
    std::memcpy(&frame_count, header.data(), sizeof frame_count);
    if (frame_count > kMaxFrames) throw refuse(std::to_string(frame_count) + " frames");
    const std::size_t sizes_end = (1 + frame_count) * sizeof(std::uint64_t);
    if (header.size() < sizes_end) throw refuse("shorter than its frame sizes");
    if (header.size() - sizes_end > kMaxIdentityBytes) throw refuse("identity too long");
    std::vector<std::uint64_t> sizes(frame_count);
    std::memcpy(sizes.data(), header.data() + sizeof frame_count,
                frame_count * sizeof(std::uint64_t));
    std::uint64_t total = 0;
    for (const std::uint64_t size : sizes) {
      if (size > kMaxMessageBytes - total) throw refuse("frames larger than 64 GiB in all");
      total += size;
    }

    Message message;
    if (bound_) {
      message.peer.assign(reinterpret_cast<const char*>(header.data()) + sizes_end,
                          header.size() - sizes_end);
      if (message.peer.empty()) throw refuse("no identity");
      ranks_[message.peer] = sender;
    }
    for (const std::uint64_t size : sizes) {
      std::vector<std::byte> bytes(size);
      std::size_t offset = 0;
      do {
        const std::size_t chunk = std::min<std::size_t>(kChunkBytes, size - offset);
        MPI_Status frame_status;
        check(MPI_Recv(bytes.data() + offset, static_cast<int>(chunk), MPI_BYTE, sender, frame_tag,
                       session_->comm(), &frame_status),
              "MPI_Recv");
        int received = 0;
        check(MPI_Get_count(&frame_status, MPI_BYTE, &received), "MPI_Get_count");
        if (static_cast<std::size_t>(received) != chunk) {
          throw refuse("a frame chunk of " + std::to_string(received) +
                       " bytes where its header said " + std::to_string(chunk));
        }
        offset += chunk;
      } while (offset < size);
      message.frames.push_back(Frame::adopt(std::move(bytes)));
    }
    return message;
  }

  std::shared_ptr<Session> session_;
  bool bound_;
  std::string identity_;
  std::map<std::string, int> ranks_;  // bound: identity -> the rank it came from
  Outbox outbox_;
  bool closed_ = false;
};

class MpiTransport final : public lorafed::Transport {
 public:
  // The ranks of one job were started by its operator: `peers` changes nothing.
  std::unique_ptr<lorafed::Channel> bind(const std::string& endpoint, lorafed::Peers) override {
    if (in_process(endpoint)) return lorafed::bind_in_process(endpoint);
    auto session = this->session();
    if (session->rank() != kBoundRank) {
      throw Error("mpi transport: only rank 0 binds; rank " + std::to_string(session->rank()) +
                  " tried to bind '" + endpoint + "'");
    }
    session->claim(session->bound, "a bound endpoint");
    return std::make_unique<MpiChannel>(std::move(session), true, "");
  }

  std::unique_ptr<lorafed::Channel> connect(const std::string& endpoint,
                                            const std::string& identity) override {
    if (in_process(endpoint)) return lorafed::connect_in_process(endpoint, identity);
    if (identity.empty() || identity.size() > kMaxIdentityBytes) {
      throw Error("mpi transport: an identity is 1 to 1024 bytes");
    }
    auto session = this->session();
    session->claim(session->connected, "a connection");
    return std::make_unique<MpiChannel>(std::move(session), false, identity);
  }

  bool crosses_processes() const override { return true; }

  std::optional<lorafed::ProcessGroup> process_group() override {
    auto session = this->session();
    return lorafed::ProcessGroup{session->rank(), session->size()};
  }

 private:
  // MPI starts when first needed: `lorafed sweep` and configuration checks
  // create a transport and never use it.
  std::shared_ptr<Session> session() {
    if (!session_) session_ = Session::get();
    return session_;
  }

  std::shared_ptr<Session> session_;
};

class MpiTransportFactory final : public lorafed::TransportFactory {
 public:
  std::unique_ptr<lorafed::Transport> create(const lorafed::ConfigTable&) const override {
    return std::make_unique<MpiTransport>();
  }
};

}  // namespace

LORAFED_TRANSPORT_PLUGIN("mpi", "0.1.0", MpiTransportFactory)
