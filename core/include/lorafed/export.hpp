#pragma once

// Symbols of the SDK library (liblorafed.so) that plugins and the host share.
// Everything else is built with hidden visibility.
#define LORAFED_API __attribute__((visibility("default")))
