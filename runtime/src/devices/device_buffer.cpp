// DeviceBuffer: device memory of the backend seam (backend.hpp), freed with its owner.
#include "llmq/runtime/backend.hpp"

namespace llmq {

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
    if (this == &other) return *this;
    if (data_) device_->deallocate(data_);
    device_ = other.device_;
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.device_ = nullptr;
    other.data_ = nullptr;
    other.bytes_ = 0;
    return *this;
}

DeviceBuffer::~DeviceBuffer() {
    if (data_) device_->deallocate(data_);
}

Expected<DeviceBuffer> allocate_buffer(Device& device, uint64_t bytes, uint64_t alignment, const std::string& what) {
    std::string why;
    void* p = device.allocate(bytes, alignment, &why);
    if (!p) return out_of_memory(what + " on " + device.info().name + ": " + why);
    return DeviceBuffer(&device, p, bytes);
}

}  // namespace llmq
