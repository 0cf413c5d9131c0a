/*
 * Fork while another thread holds the cgroup reader's lock.  The virtual report takes it
 * (spill_available -> host_available -> cgroup_memory_room) and NVML, unlike CUDA, answers in a
 * forked child, so a child asking NVML for memory must not inherit that lock held.  This program
 * defines open() (the shim's calls resolve to it first) and holds the reader inside its first
 * open of /proc/self/cgroup, under the lock, while the main thread forks; a helper lets it go
 * 300 ms later.  The child must answer within 5 seconds.
 */
#include "shim_test.h"

#include "../../shim/src/core/nvml_types.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

typedef nvmlReturn_t (*mem_t)(nvmlDevice_t, nvmlMemory_t *);
typedef nvmlReturn_t (*handle_t)(unsigned int, nvmlDevice_t *);

static mem_t mem;
static nvmlDevice_t dev0;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int armed, inside, released;

static int hold_at(const char *path)
{
	if (!armed || strcmp(path, "/proc/self/cgroup"))
		return 0;
	pthread_mutex_lock(&gate_lock);
	inside = 1;
	pthread_cond_broadcast(&gate_cond);
	while (!released)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	return 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = va_arg(ap, int);
	va_end(ap);
	hold_at(path);
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	int mode;

	va_start(ap, flags);
	mode = va_arg(ap, int);
	va_end(ap);
	hold_at(path);
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

static void *read_report(void *arg)
{
	nvmlMemory_t m;

	mem(dev0, &m);
	return NULL;
}

static void *release_later(void *arg)
{
	usleep(300 * 1000);
	pthread_mutex_lock(&gate_lock);
	released = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	return NULL;
}

int main(void)
{
	void *nvml;
	handle_t by_index;
	pthread_t reader, releaser;
	int status = -1;
	pid_t pid;

	if (!shim_setup("SPILLWAY_VRAM_LIMIT=2M", "SPILLWAY_BACKEND=host",
			"SPILLWAY_REPORT=virtual", NULL))
		return done_testing();
	nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
	if (!ok(nvml != NULL, "the fake libnvidia-ml.so.1 loads"))
		return done_testing();
	mem = (mem_t)dlsym(nvml, "nvmlDeviceGetMemoryInfo");
	by_index = (handle_t)dlsym(nvml, "nvmlDeviceGetHandleByIndex_v2");
	if (!ok(mem && by_index && by_index(0, &dev0) == NVML_SUCCESS, "NVML device 0"))
		return done_testing();
	armed = 1;
	pthread_create(&reader, NULL, read_report, NULL);
	pthread_mutex_lock(&gate_lock);
	while (!inside)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	ok(inside, "a thread reads the report and is held inside the cgroup lookup");
	pthread_create(&releaser, NULL, release_later, NULL);
	pid = fork();
	if (pid == 0) {
		nvmlMemory_t m;

		armed = 0;
		alarm(5);
		_exit(mem(dev0, &m) == NVML_SUCCESS ? 0 : 2);
	}
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "a child forked meanwhile gets NVML's memory figures (status %#x; SIGALRM: a lock "
	   "inherited held)",
	   status);
	pthread_join(reader, NULL);
	pthread_join(releaser, NULL);
	return done_testing();
}
