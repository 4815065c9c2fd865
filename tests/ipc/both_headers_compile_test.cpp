// The same translation unit as C++ (see the .c file).
#include "both_headers_compile_test.c"
