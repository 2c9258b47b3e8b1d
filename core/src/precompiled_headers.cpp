// The translation unit from which the precompiled headers that other targets
// reuse are built (core/CMakeLists.txt, "precompiled headers"); the
// executable that owns one needs a main.
int main() {
  return 0;
}
