// A shared library that is not a lorafed plugin: it exports no info record.
extern "C" __attribute__((visibility("default"))) int lorafed_test_not_a_plugin() {
  return 42;
}
