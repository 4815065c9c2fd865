// main() of every test in the cuda suite that needs a GPU: with no GPU visible
// (cudaGetDeviceCount fails or finds none) it says why and exits 77, meson's skip code;
// otherwise it runs the doctest cases.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "llmq/kernels/cuda.hpp"

int main(int argc, char** argv) {
    std::string why;
    const int devices = llmq::kernels::cuda::visible_device_count(&why);
    if (devices <= 0) {
        std::printf("SKIP: no GPU found (%s); the cuda suite needs one\n", why.c_str());
        return 77;
    }
    doctest::Context context(argc, argv);
    return context.run();
}
