// Thin binding for /dev/spillway: the ioctls of the UAPI header, fd watches on node's event loop
// (uv_poll, which watches POLLPRI too: PSI triggers signal with it), and the header's constants.
// Validation beyond argument types, defaults and fd ownership live in the TypeScript wrapper
// (cli/src/io/device.ts). Every ioctl number and struct layout comes from the header itself.
#include <napi.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#include "../../kmod/include/uapi/spillway.h"

namespace {

// Largest integer a JS number holds exactly; byte counts above it are rejected, not rounded.
constexpr double kMaxSafeInteger = 9007199254740991.0;

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

// Throws an Error shaped like node's own system errors: code, errno, syscall.
[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, int err) {
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  throw error;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

void ExpectArgs(const Napi::CallbackInfo& info, size_t count, const char* usage) {
  if (info.Length() != count) ThrowType(info.Env(), std::string("expected ") + usage);
}

int FdArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) ThrowType(info.Env(), "fd must be a number");
  double value = info[i].As<Napi::Number>().DoubleValue();
  if (value < 0 || value > INT32_MAX || value != static_cast<int32_t>(value))
    ThrowType(info.Env(), "fd must be a non-negative integer");
  return static_cast<int>(value);
}

uint64_t U64Arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  double value = info[i].As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= kMaxSafeInteger) || value != static_cast<double>(static_cast<uint64_t>(value)))
    ThrowType(info.Env(), std::string(name) + " must be a non-negative safe integer");
  return static_cast<uint64_t>(value);
}

Napi::Number U64(Napi::Env env, uint64_t value) {
  return Napi::Number::New(env, static_cast<double>(value));
}

template <typename T>
void DoIoctl(Napi::Env env, int fd, unsigned long request, const char* name, T* arg) {
  int ret;
  do {
    ret = ioctl(fd, request, arg);
  } while (ret < 0 && errno == EINTR);
  if (ret < 0) ThrowErrno(env, name, errno);
}

Napi::Value Open(const Napi::CallbackInfo& info) {
  ExpectArgs(info, 2, "open(path: string, writable: boolean)");
  if (!info[0].IsString()) ThrowType(info.Env(), "path must be a string");
  if (!info[1].IsBoolean()) ThrowType(info.Env(), "writable must be a boolean");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int flags = (info[1].As<Napi::Boolean>().Value() ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK;
  int fd = open(path.c_str(), flags);
  if (fd < 0) ThrowErrno(info.Env(), "open", errno);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  ExpectArgs(info, 1, "version(fd: number)");
  spillway_version v{};
  DoIoctl(info.Env(), FdArg(info, 0), SPILLWAY_IOC_VERSION, "SPILLWAY_IOC_VERSION", &v);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("major", v.major);
  out.Set("minor", v.minor);
  out.Set("eventSize", v.event_size);
  out.Set("testIoctls", v.test_ioctls != 0);
  return out;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  ExpectArgs(info, 1, "info(fd: number)");
  Napi::Env env = info.Env();
  spillway_info s{};
  DoIoctl(env, FdArg(info, 0), SPILLWAY_IOC_INFO, "SPILLWAY_IOC_INFO", &s);
  Napi::Object out = Napi::Object::New(env);
  out.Set("poolBytes", U64(env, s.pool_bytes));
  out.Set("requestedBytes", U64(env, s.requested_bytes));
  out.Set("usedBytes", U64(env, s.used_bytes));
  out.Set("freeBytes", U64(env, s.free_bytes));
  out.Set("floorBytes", U64(env, s.floor_bytes));
  out.Set("releasedBytes", U64(env, s.released_bytes));
  out.Set("userLimitBytes", U64(env, s.user_limit_bytes));
  out.Set("buffers", U64(env, s.buffers));
  out.Set("events", U64(env, s.events));
  out.Set("level", s.level);
  out.Set("reason", s.reason);
  out.Set("watermarkWarn", U64(env, s.watermark_warn));
  out.Set("watermarkCritical", U64(env, s.watermark_critical));
  out.Set("memAvailable", U64(env, s.mem_available));
  out.Set("swapTotal", U64(env, s.swap_total));
  out.Set("swapFree", U64(env, s.swap_free));
  out.Set("swapRate", U64(env, s.swap_rate));
  out.Set("watchdogMs", s.watchdog_ms);
  out.Set("lentBytes", U64(env, s.lent_bytes));
  return out;
}

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  ExpectArgs(info, 2, "alloc(fd: number, size: number)");
  spillway_alloc a{};
  int fd = FdArg(info, 0);
  a.size = U64Arg(info, 1, "size");
  DoIoctl(info.Env(), fd, SPILLWAY_IOC_ALLOC, "SPILLWAY_IOC_ALLOC", &a);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("fd", a.fd);
  out.Set("id", U64(info.Env(), a.id));
  return out;
}

Napi::Value Resize(const Napi::CallbackInfo& info) {
  ExpectArgs(info, 2, "resize(fd: number, poolBytes: number)");
  spillway_resize r{};
  int fd = FdArg(info, 0);
  r.pool_bytes = U64Arg(info, 1, "poolBytes");
  DoIoctl(info.Env(), fd, SPILLWAY_IOC_RESIZE, "SPILLWAY_IOC_RESIZE", &r);
  return U64(info.Env(), r.result_bytes);
}

Napi::Value SetWatermarks(const Napi::CallbackInfo& info) {
  ExpectArgs(info, 3, "setWatermarks(fd: number, warn: number, critical: number)");
  spillway_watermarks w{};
  int fd = FdArg(info, 0);
  w.warn = U64Arg(info, 1, "warn");
  w.critical = U64Arg(info, 2, "critical");
  DoIoctl(info.Env(), fd, SPILLWAY_IOC_SET_WATERMARKS, "SPILLWAY_IOC_SET_WATERMARKS", &w);
  return info.Env().Undefined();
}

// LIST_BUFFERS and LIST_LOANS: a struct spillway_list of struct spillway_buffer_info each.
Napi::Value ListEntries(const Napi::CallbackInfo& info, unsigned long request, const char* name, const char* usage,
                        const char* key) {
  ExpectArgs(info, 2, usage);
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint64_t capacity = U64Arg(info, 1, "capacity");
  if (capacity > SPILLWAY_LIST_MAX) ThrowType(env, "capacity must be at most SPILLWAY_LIST_MAX");
  std::vector<spillway_buffer_info> entries(capacity);
  spillway_list l{};
  l.entries = reinterpret_cast<uintptr_t>(entries.data());
  l.capacity = static_cast<uint32_t>(capacity);
  DoIoctl(env, fd, request, name, &l);
  uint32_t written = l.count < l.capacity ? l.count : l.capacity;
  Napi::Array list = Napi::Array::New(env, written);
  for (uint32_t i = 0; i < written; i++) {
    Napi::Object b = Napi::Object::New(env);
    b.Set("id", U64(env, entries[i].id));
    b.Set("size", U64(env, entries[i].size));
    b.Set("pid", entries[i].pid);
    b.Set("uid", entries[i].uid);
    b.Set("cgroupId", U64(env, entries[i].cgroup_id));
    list[i] = b;
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("count", l.count);
  out.Set(key, list);
  return out;
}

Napi::Value ListBuffers(const Napi::CallbackInfo& info) {
  return ListEntries(info, SPILLWAY_IOC_LIST_BUFFERS, "SPILLWAY_IOC_LIST_BUFFERS",
                     "listBuffers(fd: number, capacity: number)", "buffers");
}

// The capacity the pool lent to GPU drivers (ABI 1.3): entries shaped like buffers.
Napi::Value ListLoans(const Napi::CallbackInfo& info) {
  return ListEntries(info, SPILLWAY_IOC_LIST_LOANS, "SPILLWAY_IOC_LIST_LOANS",
                     "listLoans(fd: number, capacity: number)", "loans");
}

Napi::Object ShareObject(Napi::Env env, const spillway_share& s) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("cgroupId", U64(env, s.cgroup_id));
  out.Set("maxBytes", U64(env, s.max_bytes));
  out.Set("minBytes", U64(env, s.min_bytes));
  out.Set("usedBytes", U64(env, s.used_bytes));
  return out;
}

// setShare(fd, cgroupFd, cgroupId, maxBytes, minBytes): cgroupFd -1 names the cgroup by cgroupId.
Napi::Value SetShare(const Napi::CallbackInfo& info) {
  ExpectArgs(info, 5, "setShare(fd: number, cgroupFd: number, cgroupId: number, maxBytes: number, minBytes: number)");
  Napi::Env env = info.Env();
  spillway_share s{};
  int fd = FdArg(info, 0);
  if (!info[1].IsNumber()) ThrowType(env, "cgroupFd must be a number");
  double cgroup_fd = info[1].As<Napi::Number>().DoubleValue();
  if (cgroup_fd < -1 || cgroup_fd > INT32_MAX || cgroup_fd != static_cast<int32_t>(cgroup_fd))
    ThrowType(env, "cgroupFd must be -1 or a non-negative integer");
  s.cgroup_fd = static_cast<int32_t>(cgroup_fd);
  s.cgroup_id = U64Arg(info, 2, "cgroupId");
  s.max_bytes = U64Arg(info, 3, "maxBytes");
  s.min_bytes = U64Arg(info, 4, "minBytes");
  DoIoctl(env, fd, SPILLWAY_IOC_SET_SHARE, "SPILLWAY_IOC_SET_SHARE", &s);
  return ShareObject(env, s);
}

Napi::Value ListShares(const Napi::CallbackInfo& info) {
  ExpectArgs(info, 2, "listShares(fd: number, capacity: number)");
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  uint64_t capacity = U64Arg(info, 1, "capacity");
  if (capacity > SPILLWAY_LIST_MAX) ThrowType(env, "capacity must be at most SPILLWAY_LIST_MAX");
  std::vector<spillway_share> entries(capacity);
  spillway_list l{};
  l.entries = reinterpret_cast<uintptr_t>(entries.data());
  l.capacity = static_cast<uint32_t>(capacity);
  DoIoctl(env, fd, SPILLWAY_IOC_LIST_SHARES, "SPILLWAY_IOC_LIST_SHARES", &l);
  uint32_t written = l.count < l.capacity ? l.count : l.capacity;
  Napi::Array shares = Napi::Array::New(env, written);
  for (uint32_t i = 0; i < written; i++) shares[i] = ShareObject(env, entries[i]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("count", l.count);
  out.Set("shares", shares);
  return out;
}

// Watches an fd on node's own event loop with uv_poll (epoll): no thread, no timeout, no wake-up
// while the fd is quiet. UV_PRIORITIZED (libuv >= 1.14) is POLLPRI, which PSI triggers signal with.
// The callback gets (error, revents) with revents in poll() terms (POLLIN, POLLPRI). stop() closes
// the handle at once; the object stays alive while it watches, so a dropped reference does not
// end a watch silently.
class FdWatch : public Napi::ObjectWrap<FdWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatch", {InstanceMethod<&FdWatch::Stop>("stop")});
  }

  // new FdWatch(fd, events, callback)
  explicit FdWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatch>(info) {
    Napi::Env env = info.Env();
    ExpectArgs(info, 3, "watch(fd: number, events: number, callback: function)");
    int fd = FdArg(info, 0);
    if (!info[1].IsNumber()) ThrowType(env, "events must be a number");
    int32_t events = info[1].As<Napi::Number>().Int32Value();
    if (events <= 0 || (events & ~(POLLIN | POLLPRI)) != 0)
      ThrowType(env, "events must be POLLIN, POLLPRI or both");
    if (!info[2].IsFunction()) ThrowType(env, "callback must be a function");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) ThrowType(env, "no event loop");
    handle_ = new uv_poll_t;
    int err = uv_poll_init(loop, handle_, fd);
    if (err == 0) {
      handle_->data = this;
      int uv_events = ((events & POLLIN) ? UV_READABLE : 0) | ((events & POLLPRI) ? UV_PRIORITIZED : 0);
      err = uv_poll_start(handle_, uv_events, OnPoll);
      if (err != 0) Close();
    } else {
      delete handle_;
      handle_ = nullptr;
    }
    if (err != 0) ThrowErrno(env, "uv_poll_start", -err);
    callback_ = Napi::Persistent(info[2].As<Napi::Function>());
    Ref();  // released by Close(): a watch lives until it is stopped
  }

  // Reached only at environment teardown while watching, or after stop(): no reference to drop.
  ~FdWatch() override { Close(false); }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<FdWatch*>(handle->data);
    if (self == nullptr) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Function callback = self->callback_.Value();
    Napi::Value error = env.Null();
    if (status < 0) {
      Napi::Error e = Napi::Error::New(env, std::string("poll: ") + uv_strerror(status));
      e.Set("code", Napi::String::New(env, uv_err_name(status)));
      e.Set("syscall", Napi::String::New(env, "poll"));
      error = e.Value();
      self->Close();  // libuv has stopped the handle: the fd can not be watched any more
    }
    int revents = ((events & UV_READABLE) ? POLLIN : 0) | ((events & UV_PRIORITIZED) ? POLLPRI : 0);
    try {
      callback.MakeCallback(env.Global(), {error, Napi::Number::New(env, revents)});
    } catch (const Napi::Error& e) {
      // A throwing callback is the process's uncaught exception, as for any event emitter.
      napi_fatal_exception(env, e.Value());
    }
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Close();
    return info.Env().Undefined();
  }

  void Close(bool unref = true) {
    if (handle_ == nullptr) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
    if (!callback_.IsEmpty()) {
      callback_.Reset();
      if (unref) Unref();
    }
  }

  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
};

#define SET_CONST(obj, name) obj.Set(#name, Napi::Number::New(env, static_cast<double>(name)))
#define SET_OFFSET(obj, type, field) obj.Set(#field, Napi::Number::New(env, offsetof(struct type, field)))

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("SPILLWAY_DEVICE_NAME", Napi::String::New(env, SPILLWAY_DEVICE_NAME));
  SET_CONST(c, SPILLWAY_ABI_MAJOR);
  SET_CONST(c, SPILLWAY_ABI_MINOR);
  SET_CONST(c, SPILLWAY_LEVEL_OK);
  SET_CONST(c, SPILLWAY_LEVEL_WARN);
  SET_CONST(c, SPILLWAY_LEVEL_CRITICAL);
  SET_CONST(c, SPILLWAY_REASON_MEM_AVAILABLE);
  SET_CONST(c, SPILLWAY_REASON_SWAP_FREE);
  SET_CONST(c, SPILLWAY_REASON_SWAP_RATE);
  SET_CONST(c, SPILLWAY_REASON_OOM);
  SET_CONST(c, SPILLWAY_REASON_RECOVERED);
  SET_CONST(c, SPILLWAY_EVENT_LEVEL);
  SET_CONST(c, SPILLWAY_EVENT_OVERFLOW);
  SET_CONST(c, SPILLWAY_EVENT_RELEASE);
  SET_CONST(c, SPILLWAY_EVENT_SIZE);
  SET_CONST(c, SPILLWAY_EVENT_QUEUE_LEN);
  SET_CONST(c, SPILLWAY_LIST_MAX);
  SET_CONST(c, SPILLWAY_IOC_MAGIC);
  SET_CONST(c, SPILLWAY_IOC_VERSION);
  SET_CONST(c, SPILLWAY_IOC_INFO);
  SET_CONST(c, SPILLWAY_IOC_ALLOC);
  SET_CONST(c, SPILLWAY_IOC_RESIZE);
  SET_CONST(c, SPILLWAY_IOC_SET_WATERMARKS);
  SET_CONST(c, SPILLWAY_IOC_LIST_BUFFERS);
  SET_CONST(c, SPILLWAY_IOC_SET_SHARE);
  SET_CONST(c, SPILLWAY_IOC_LIST_SHARES);
  SET_CONST(c, SPILLWAY_IOC_LIST_LOANS);
  SET_CONST(c, POLLIN);
  SET_CONST(c, POLLPRI);
  SET_CONST(c, POLLERR);
  return c;
}

Napi::Object Sizes(Napi::Env env) {
  Napi::Object s = Napi::Object::New(env);
  s.Set("spillway_event", sizeof(struct spillway_event));
  s.Set("spillway_version", sizeof(struct spillway_version));
  s.Set("spillway_info", sizeof(struct spillway_info));
  s.Set("spillway_alloc", sizeof(struct spillway_alloc));
  s.Set("spillway_resize", sizeof(struct spillway_resize));
  s.Set("spillway_watermarks", sizeof(struct spillway_watermarks));
  s.Set("spillway_buffer_info", sizeof(struct spillway_buffer_info));
  s.Set("spillway_list", sizeof(struct spillway_list));
  s.Set("spillway_share", sizeof(struct spillway_share));
  return s;
}

Napi::Object EventOffsets(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  SET_OFFSET(o, spillway_event, seq);
  SET_OFFSET(o, spillway_event, type);
  SET_OFFSET(o, spillway_event, level);
  SET_OFFSET(o, spillway_event, prev_level);
  SET_OFFSET(o, spillway_event, reason);
  SET_OFFSET(o, spillway_event, time_ns);
  SET_OFFSET(o, spillway_event, mem_available);
  SET_OFFSET(o, spillway_event, swap_free);
  SET_OFFSET(o, spillway_event, swap_rate);
  SET_OFFSET(o, spillway_event, pool_free);
  SET_OFFSET(o, spillway_event, count);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("version", Napi::Function::New(env, Version, "version"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("alloc", Napi::Function::New(env, Alloc, "alloc"));
  exports.Set("resize", Napi::Function::New(env, Resize, "resize"));
  exports.Set("setWatermarks", Napi::Function::New(env, SetWatermarks, "setWatermarks"));
  exports.Set("listBuffers", Napi::Function::New(env, ListBuffers, "listBuffers"));
  exports.Set("setShare", Napi::Function::New(env, SetShare, "setShare"));
  exports.Set("listShares", Napi::Function::New(env, ListShares, "listShares"));
  exports.Set("listLoans", Napi::Function::New(env, ListLoans, "listLoans"));
  exports.Set("FdWatch", FdWatch::Define(env));
  exports.Set("constants", Constants(env));
  exports.Set("sizes", Sizes(env));
  exports.Set("eventOffsets", EventOffsets(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(spillway, Init)
