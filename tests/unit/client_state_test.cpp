// Client state between instructions: the store that holds and spills it,
// and a backend rebuilt from it (ModelBackend::client_state).
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <filesystem>

#include "lorafed/adapter.hpp"
#include "lorafed/error.hpp"
#include "lorafed/model_backend.hpp"
#include "lorafed/plugin.hpp"
#include "src/client/client_state_store.hpp"
#include "src/plugin_registry.hpp"

using namespace lorafed;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("lorafed-state-test-" + name);
  fs::remove_all(dir);
  return dir;
}

NamedTensors some_state(std::int64_t seed) {
  at::manual_seed(static_cast<std::uint64_t>(seed));
  return {{"layer.weight", at::randn({4, 3})},
          {"layer.bias", at::randn({4}).to(at::kBFloat16)},
          {"steps", at::full({1}, seed, at::kLong)}};
}

bool same(const NamedTensors& a, const NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, tensor] : a) {
    const auto found = b.find(name);
    if (found == b.end() || tensor.scalar_type() != found->second.scalar_type() ||
        !at::equal(tensor, found->second)) {
      return false;
    }
  }
  return true;
}

constexpr std::size_t kStateBytes = 4 * 3 * 4 + 4 * 2 + 8;

}  // namespace

TEST_CASE("client state within the memory budget stays in memory", "[client_state]") {
  const fs::path dir = fresh_dir("memory");
  ClientStateStore store(1 << 20, dir);
  CHECK_FALSE(store.get(3).has_value());
  store.put(3, some_state(3));
  REQUIRE(store.get(3).has_value());
  CHECK(same(*store.get(3), some_state(3)));
  CHECK(store.stats().clients_in_memory == 1);
  CHECK(store.stats().bytes_in_memory == kStateBytes);
  CHECK_FALSE(fs::exists(dir));
  store.put(3, {});  // an empty state erases
  CHECK_FALSE(store.get(3).has_value());
  CHECK(store.stats().bytes_in_memory == 0);
}

TEST_CASE("client state past the budget is spilled to disk and read back bit for bit",
          "[client_state]") {
  const fs::path dir = fresh_dir("spill");
  {
    ClientStateStore store(kStateBytes, dir);  // room for one state
    store.put(1, some_state(1));
    store.put(2, some_state(2));
    // The least recently used one went to disk.
    CHECK(fs::exists(dir / "client-1.safetensors"));
    CHECK_FALSE(fs::exists(dir / "client-2.safetensors"));
    CHECK(store.stats().clients_on_disk == 1);
    CHECK(store.stats().clients_in_memory == 1);
    REQUIRE(store.get(1).has_value());
    CHECK(same(*store.get(1), some_state(1)));
    CHECK(store.stats().reloads == 2);
    // A state read back stays on disk until replaced: a failed instruction loses nothing.
    CHECK(fs::exists(dir / "client-1.safetensors"));

    store.put(1, some_state(11));  // replaces the file; client 2 is now the older one
    CHECK_FALSE(fs::exists(dir / "client-1.safetensors"));
    CHECK(fs::exists(dir / "client-2.safetensors"));
    CHECK(same(*store.get(1), some_state(11)));
    CHECK(same(*store.get(2), some_state(2)));
    CHECK(store.stats().spills == 2);

    store.put(2, {});
    CHECK_FALSE(fs::exists(dir / "client-2.safetensors"));
    CHECK_FALSE(store.get(2).has_value());
  }
  CHECK_FALSE(fs::exists(dir));  // the store removes its folder
}

TEST_CASE("a zero budget keeps every state on disk", "[client_state]") {
  const fs::path dir = fresh_dir("zero");
  ClientStateStore store(0, dir);
  for (std::int64_t client = 0; client < 5; ++client) store.put(client, some_state(client));
  CHECK(store.stats().clients_on_disk == 5);
  CHECK(store.stats().bytes_in_memory == 0);
  for (std::int64_t client = 0; client < 5; ++client) {
    CHECK(same(*store.get(client), some_state(client)));
  }
}

TEST_CASE("a backend rebuilt from a client's state behaves as the client's own", "[client_state]") {
  static const PluginRegistry registry({LORAFED_BUILD_PLUGIN_DIR});
  const auto plugin = registry.model("linear");
  const auto make = [&] {
    return keep_library_alive(
        plugin.factory->create(ConfigTable(),
                               ModelContext{ModelContext::Role::kClient, 0, 2, 1, {}}),
        plugin.factory);
  };
  auto client = make();
  CHECK(client->client_state().empty());  // as made
  Adapter merged = init_adapter(client->spec(), 4, 8.0, 3);
  for (auto& [name, factors] : merged.layers) factors.b.normal_();
  client->merge_adapter(merged);
  const NamedTensors state = client->client_state();
  REQUIRE(state.size() == 1);

  auto rebuilt = make();
  const double fresh_loss = rebuilt->evaluate().loss;
  rebuilt->load_client_state(state);
  CHECK(rebuilt->evaluate().loss == client->evaluate().loss);
  CHECK(rebuilt->evaluate().loss != fresh_loss);

  NamedTensors wrong = state;
  wrong.begin()->second = wrong.begin()->second.narrow(0, 0, 1);
  CHECK_THROWS_WITH(make()->load_client_state(wrong),
                    Catch::Matchers::Contains("linear model: client state") &&
                        Catch::Matchers::Contains("shape"));
}
