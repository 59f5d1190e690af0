// A fake libascendcl.so for the tests of package acl.
//
// It exports the AscendCL functions the binding uses, with the published
// signatures, and runs a trivial model: output i is a copy of input i.
// Build: gcc -shared -fPIC -o libascendcl.so fakeacl.c -lpthread
// (add -DFAKEACL_OMIT_EXECUTE to leave out aclmdlExecute).
//
// The model file passed to aclmdlLoadFromFile is text, one entry a line:
//
//   input NAME DTYPE DIMS     DTYPE: FLOAT FLOAT16 INT8 INT32 UINT8 INT64
//   output NAME DTYPE DIMS           DOUBLE BOOL BF16; DIMS: 2,3 or 1,-1
//   gear V,V,...              values for the -1 dims, like ATC --dynamic_dims
//   shape_order NAME ...      inputs whose dims form a gear vector, like the
//                             order of ATC --input_shape (default: all inputs)
//
// Output i must have the dtype and dims of input i. A model with gears gets
// a last input named ascend_mbatch_shape_data (INT64, one element per gear
// value), as ATC adds one.
//
// Environment, read at every call:
//   FAKEACL_LOG      file that gets one line per call: the function name,
//                    "!CODE" when it failed, and details for some calls.
//   FAKEACL_STATE    file rewritten after every call with the live counts:
//                    "init=0 device=0 context=0 stream=0 model=0 desc=0
//                    dataset=0 buffer=0 malloc=0".
//   FAKEACL_FAIL     NAME:CODE[:NTH][,...]: the NTH call of NAME (every call
//                    when NTH is missing) fails with CODE. Functions that
//                    return a pointer return NULL, size getters return 0,
//                    data type getters return ACL_DT_UNDEFINED (-1).
//   FAKEACL_DEVICES  number of devices (default 1).
//   FAKEACL_PREINIT  "1" makes the fake behave as if other code in the
//                    process had called aclInit: aclInit returns
//                    ACL_ERROR_REPEAT_INITIALIZE and the other calls work.
//
// Calls that the real runtime runs under a context (streams, memory,
// models) fail with ACL_ERROR_RT_CONTEXT_NULL unless the calling thread
// created a context that is still alive. Call counts, live counts and
// models are reset by an aclInit while AscendCL is not initialised.

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int aclError;
typedef int aclDataType;
typedef void *aclrtContext;
typedef void *aclrtStream;

typedef struct {
	char name[128];
	size_t dimCount;
	int64_t dims[128];
} aclmdlIODims;

typedef struct aclDataBuffer {
	void *data;
	size_t size;
} aclDataBuffer;

#define MAX_DATASET_BUFFERS 64
typedef struct aclmdlDataset {
	aclDataBuffer *buffers[MAX_DATASET_BUFFERS];
	size_t count;
} aclmdlDataset;

typedef struct aclmdlDesc {
	uint32_t model_id; // 0 until aclmdlGetDesc
} aclmdlDesc;

enum {
	OK = 0,
	INVALID_PARAM = 100000,
	UNINITIALIZE = 100001,
	REPEAT_INITIALIZE = 100002,
	INVALID_MODEL_ID = 100011,
	REPEAT_FINALIZE = 100037,
	RT_INVALID_DEVICEID = 107001,
	RT_CONTEXT_NULL = 107002,
	GE_EXEC_MODEL_PATH_INVALID = 145002,
	GE_DYNAMIC_BATCH_SIZE_INVALID = 145013,
	GE_LOAD_MODEL = 545001,
};

// ---- live handles ---------------------------------------------------------

enum { K_CONTEXT, K_STREAM, K_DESC, K_DATASET, K_BUFFER, K_MALLOC, K_COUNT };
static const char *kind_names[K_COUNT] = {"context", "stream", "desc", "dataset", "buffer", "malloc"};

#define MAX_HANDLES 1024
static struct {
	void *p;
	size_t size;
	int kind;
	pthread_t owner; // creating thread, for contexts
} handles[MAX_HANDLES];

static int live_init;
static int live_device;

static int add_handle(int kind, void *p, size_t size) {
	for (int i = 0; i < MAX_HANDLES; i++) {
		if (handles[i].p == NULL) {
			handles[i].p = p;
			handles[i].size = size;
			handles[i].kind = kind;
			handles[i].owner = pthread_self();
			return 1;
		}
	}
	return 0;
}

static int find_handle(int kind, const void *p) {
	for (int i = 0; i < MAX_HANDLES; i++) {
		if (handles[i].p == p && p != NULL && handles[i].kind == kind) {
			return i;
		}
	}
	return -1;
}

static int remove_handle(int kind, const void *p) {
	int i = find_handle(kind, p);
	if (i < 0) {
		return 0;
	}
	handles[i].p = NULL;
	return 1;
}

static int count_handles(int kind) {
	int n = 0;
	for (int i = 0; i < MAX_HANDLES; i++) {
		if (handles[i].p != NULL && handles[i].kind == kind) {
			n++;
		}
	}
	return n;
}

// device_range reports whether [p, p+n) lies inside one aclrtMalloc block.
static int device_range(const void *p, size_t n) {
	const char *c = p;
	for (int i = 0; i < MAX_HANDLES; i++) {
		const char *base = handles[i].p;
		if (base != NULL && handles[i].kind == K_MALLOC && c >= base &&
		    c + n <= base + handles[i].size) {
			return 1;
		}
	}
	return 0;
}

// The context the calling thread created and has not destroyed.
static __thread void *current_context;

// ---- models ---------------------------------------------------------------

#define MAX_TENSORS 16
#define MAX_RANK 8
#define MAX_GEARS 16
#define MAX_GEAR_VALUES 32
#define MAX_MODELS 4

struct tensor {
	char name[128];
	int dtype;
	size_t rank;
	int64_t dims[MAX_RANK];
};

struct model {
	int loaded;
	void *context;
	int ninputs; // including the gear input
	int noutputs;
	struct tensor inputs[MAX_TENSORS];
	struct tensor outputs[MAX_TENSORS];
	int ngears;
	int gear_values; // values per gear
	int64_t gears[MAX_GEARS][MAX_GEAR_VALUES];
	int norder;
	int order[MAX_TENSORS]; // input indexes in shape_order
	int current_gear;
};

static struct model models[MAX_MODELS + 1]; // model ids 1..MAX_MODELS

static const char *gear_input_name = "ascend_mbatch_shape_data";

// ---- call log, failure injection, state -----------------------------------

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static __thread char recent_message[512];

#define MAX_NAMES 64
static struct {
	char name[64];
	int calls;
} call_counts[MAX_NAMES];

static void reset_all(void) {
	memset(call_counts, 0, sizeof(call_counts));
	memset(handles, 0, sizeof(handles));
	memset(models, 0, sizeof(models));
	live_device = 0;
}

static int count_call(const char *name) {
	for (int i = 0; i < MAX_NAMES; i++) {
		if (call_counts[i].name[0] == '\0') {
			snprintf(call_counts[i].name, sizeof(call_counts[i].name), "%s", name);
		}
		if (strcmp(call_counts[i].name, name) == 0) {
			return ++call_counts[i].calls;
		}
	}
	return 0;
}

// injected_code returns the code FAKEACL_FAIL assigns to call nth of name.
static int injected_code(const char *name, int nth) {
	const char *spec = getenv("FAKEACL_FAIL");
	if (spec == NULL) {
		return 0;
	}
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s", spec);
	char *save = NULL;
	for (char *entry = strtok_r(buf, ",", &save); entry != NULL; entry = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(entry, ':');
		if (colon == NULL) {
			continue;
		}
		*colon = '\0';
		if (strcmp(entry, name) != 0) {
			continue;
		}
		char *rest = colon + 1;
		int code = atoi(rest);
		char *second = strchr(rest, ':');
		int want = second != NULL ? atoi(second + 1) : 0;
		if (want == 0 || want == nth) {
			return code;
		}
	}
	return 0;
}

static void log_line(const char *name, int code, const char *detail) {
	const char *path = getenv("FAKEACL_LOG");
	if (path == NULL || path[0] == '\0') {
		return;
	}
	FILE *f = fopen(path, "a");
	if (f == NULL) {
		return;
	}
	fputs(name, f);
	if (code != 0) {
		fprintf(f, "!%d", code);
	}
	if (detail != NULL && detail[0] != '\0') {
		fprintf(f, " %s", detail);
	}
	fputc('\n', f);
	fclose(f);
}

static void write_state(void) {
	const char *path = getenv("FAKEACL_STATE");
	if (path == NULL || path[0] == '\0') {
		return;
	}
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		return;
	}
	int models_loaded = 0;
	for (int i = 1; i <= MAX_MODELS; i++) {
		models_loaded += models[i].loaded;
	}
	fprintf(f, "init=%d device=%d model=%d", live_init, live_device, models_loaded);
	for (int k = 0; k < K_COUNT; k++) {
		fprintf(f, " %s=%d", kind_names[k], count_handles(k));
	}
	fputc('\n', f);
	fclose(f);
}

// fail records a failure message for aclGetRecentErrMsg and returns code.
static int fail(int code, const char *format, ...) {
	va_list args;
	va_start(args, format);
	vsnprintf(recent_message, sizeof(recent_message), format, args);
	va_end(args);
	return code;
}

// Every function starts with enter and leaves through leave. enter locks
// the state, counts the call and returns the injected failure code or 0.
// The log line is written by leave, once the result is known.
static const char *current_name;
static char current_detail[256];

static int enter(const char *name, const char *detail) {
	pthread_mutex_lock(&mu);
	current_name = name;
	snprintf(current_detail, sizeof(current_detail), "%s", detail != NULL ? detail : "");
	int nth = count_call(name);
	int code = injected_code(name, nth);
	if (code != 0) {
		fail(code, "fake: injected failure of %s (call %d)", name, nth);
	}
	return code;
}

static void leave(int code) {
	log_line(current_name, code, current_detail);
	write_state();
	pthread_mutex_unlock(&mu);
}

#define ENTER_ERR(name, detail)                 \
	do {                                        \
		int injected_ = enter(name, detail);    \
		if (injected_ != 0) {                   \
			leave(injected_);                   \
			return injected_;                   \
		}                                       \
	} while (0)

#define ENTER_VALUE(name, failed)               \
	do {                                        \
		int injected_ = enter(name, NULL);      \
		if (injected_ != 0) {                   \
			leave(injected_);                   \
			return failed;                      \
		}                                       \
	} while (0)

#define RETURN_ERR(expr)        \
	do {                        \
		int result_ = (expr);   \
		leave(result_);         \
		return result_;         \
	} while (0)

#define RETURN_VALUE(value, failed_flag) \
	do {                                 \
		leave((failed_flag) ? -1 : 0);   \
		return value;                    \
	} while (0)

static int need_context(void) {
	if (current_context == NULL || find_handle(K_CONTEXT, current_context) < 0) {
		return fail(RT_CONTEXT_NULL, "fake: %s called on a thread without a live context", current_name);
	}
	return OK;
}

// ---- model file parsing -----------------------------------------------------

static int parse_dtype(const char *s) {
	static const struct {
		const char *name;
		int code;
	} table[] = {{"FLOAT", 0}, {"FLOAT16", 1}, {"INT8", 2},    {"INT32", 3}, {"UINT8", 4},
	             {"INT64", 9}, {"DOUBLE", 11}, {"BOOL", 12}, {"BF16", 27}};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(table[i].name, s) == 0) {
			return table[i].code;
		}
	}
	return -100;
}

static size_t dtype_size(int dtype) {
	switch (dtype) {
	case 0:
	case 3:
		return 4;
	case 1:
	case 27:
		return 2;
	case 2:
	case 4:
	case 12:
		return 1;
	case 9:
	case 11:
		return 8;
	}
	return 0;
}

static int parse_list(char *s, int64_t *out, int max) {
	int n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(s, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (n == max) {
			return -1;
		}
		out[n++] = strtoll(tok, NULL, 10);
	}
	return n;
}

static int parse_tensor(char *rest, struct tensor *t) {
	char dtype[32], dims[256];
	if (sscanf(rest, "%127s %31s %255s", t->name, dtype, dims) != 3) {
		return 0;
	}
	t->dtype = parse_dtype(dtype);
	if (t->dtype == -100) {
		return 0;
	}
	int n = parse_list(dims, t->dims, MAX_RANK);
	if (n < 0) {
		return 0;
	}
	t->rank = (size_t)n;
	return 1;
}

static int count_dynamic(const struct tensor *t) {
	int n = 0;
	for (size_t i = 0; i < t->rank; i++) {
		n += t->dims[i] < 0;
	}
	return n;
}

static int load_model(const char *path, struct model *m) {
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return fail(GE_EXEC_MODEL_PATH_INVALID, "fake: cannot open model file %s", path);
	}
	memset(m, 0, sizeof(*m));
	m->norder = -1;
	char line[1024];
	int lineno = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		char word[32];
		int used = 0;
		if (sscanf(line, "%31s%n", word, &used) != 1 || word[0] == '#') {
			continue;
		}
		char *rest = line + used;
		int ok = 1;
		if (strcmp(word, "input") == 0 && m->ninputs < MAX_TENSORS - 1) {
			ok = parse_tensor(rest, &m->inputs[m->ninputs++]);
		} else if (strcmp(word, "output") == 0 && m->noutputs < MAX_TENSORS) {
			ok = parse_tensor(rest, &m->outputs[m->noutputs++]);
		} else if (strcmp(word, "gear") == 0 && m->ngears < MAX_GEARS) {
			char values[512];
			ok = sscanf(rest, "%511s", values) == 1;
			int n = ok ? parse_list(values, m->gears[m->ngears], MAX_GEAR_VALUES) : -1;
			ok = n > 0 && (m->ngears == 0 || n == m->gear_values);
			m->gear_values = n;
			m->ngears++;
		} else if (strcmp(word, "shape_order") == 0) {
			m->norder = 0;
			char name[128];
			int n = 0;
			while (ok && sscanf(rest, "%127s%n", name, &n) == 1) {
				rest += n;
				int found = -1;
				for (int i = 0; i < m->ninputs; i++) {
					if (strcmp(m->inputs[i].name, name) == 0) {
						found = i;
					}
				}
				ok = found >= 0;
				m->order[m->norder++] = found;
			}
		} else {
			ok = 0;
		}
		if (!ok) {
			fclose(f);
			return fail(GE_LOAD_MODEL, "fake: %s:%d: invalid line: %s", path, lineno, line);
		}
	}
	fclose(f);

	if (m->norder < 0) {
		m->norder = m->ninputs;
		for (int i = 0; i < m->ninputs; i++) {
			m->order[i] = i;
		}
	}
	int dynamic = 0;
	for (int i = 0; i < m->ninputs; i++) {
		int in_order = 0;
		for (int j = 0; j < m->norder; j++) {
			in_order |= m->order[j] == i;
		}
		if (count_dynamic(&m->inputs[i]) > 0 && !in_order) {
			return fail(GE_LOAD_MODEL, "fake: %s: input %s has -1 dims but is not in shape_order", path,
			            m->inputs[i].name);
		}
		dynamic += count_dynamic(&m->inputs[i]);
	}
	if (m->ngears > 0 && dynamic != m->gear_values) {
		return fail(GE_LOAD_MODEL, "fake: %s: gears have %d values but the inputs have %d -1 dims", path,
		            m->gear_values, dynamic);
	}
	if (m->noutputs > m->ninputs) {
		return fail(GE_LOAD_MODEL, "fake: %s: more outputs than inputs", path);
	}
	for (int i = 0; i < m->noutputs; i++) {
		const struct tensor *in = &m->inputs[i], *out = &m->outputs[i];
		if (in->dtype != out->dtype || in->rank != out->rank ||
		    memcmp(in->dims, out->dims, in->rank * sizeof(int64_t)) != 0) {
			return fail(GE_LOAD_MODEL, "fake: %s: output %s must have the dtype and dims of input %s", path,
			            out->name, in->name);
		}
	}
	if (m->ngears > 0) {
		struct tensor *g = &m->inputs[m->ninputs++];
		snprintf(g->name, sizeof(g->name), "%s", gear_input_name);
		g->dtype = 9;
		g->rank = 1;
		g->dims[0] = m->gear_values;
	}
	// Without aclmdlSetInputDynamicDims the runtime runs the largest gear;
	// the fake takes the last one as the largest.
	m->current_gear = m->ngears - 1;
	return OK;
}

// gear_dims writes the dims of input i under gear g into out and returns the
// rank.
static size_t gear_dims(const struct model *m, int input, int g, int64_t *out) {
	const struct tensor *t = &m->inputs[input];
	int offset = 0;
	for (int j = 0; j < m->norder && m->order[j] != input; j++) {
		offset += count_dynamic(&m->inputs[m->order[j]]);
	}
	for (size_t d = 0; d < t->rank; d++) {
		out[d] = t->dims[d] >= 0 || g < 0 ? t->dims[d] : m->gears[g][offset++];
	}
	return t->rank;
}

static size_t elements(const int64_t *dims, size_t rank) {
	size_t n = 1;
	for (size_t i = 0; i < rank; i++) {
		n *= (size_t)dims[i];
	}
	return n;
}

// input_bytes returns the size of input i under gear g.
static size_t input_bytes(const struct model *m, int input, int g) {
	int64_t dims[MAX_RANK];
	size_t rank = gear_dims(m, input, g, dims);
	return elements(dims, rank) * dtype_size(m->inputs[input].dtype);
}

// max_bytes returns the size of input i under its largest gear.
static size_t max_bytes(const struct model *m, int input) {
	if (m->ngears == 0) {
		return input_bytes(m, input, -1);
	}
	size_t best = 0;
	for (int g = 0; g < m->ngears; g++) {
		size_t n = input_bytes(m, input, g);
		best = n > best ? n : best;
	}
	return best;
}

// full_gear writes the aclmdlGetInputDynamicDims form of gear g.
static void full_gear(const struct model *m, int g, aclmdlIODims *out) {
	memset(out, 0, sizeof(*out));
	size_t n = 0;
	for (int j = 0; j < m->norder; j++) {
		n += gear_dims(m, m->order[j], g, out->dims + n);
	}
	out->dimCount = n;
}

static struct model *model_of(const aclmdlDesc *desc) {
	if (desc == NULL || find_handle(K_DESC, desc) < 0 || desc->model_id == 0 ||
	    !models[desc->model_id].loaded) {
		return NULL;
	}
	return &models[desc->model_id];
}

// ---- API: process, device, context, stream ----------------------------------

static int initialised(void) {
	const char *pre = getenv("FAKEACL_PREINIT");
	return live_init > 0 || (pre != NULL && strcmp(pre, "1") == 0);
}

aclError aclInit(const char *config) {
	pthread_mutex_lock(&mu);
	if (live_init == 0) {
		reset_all();
	}
	pthread_mutex_unlock(&mu);
	ENTER_ERR("aclInit", config);
	if (initialised()) {
		RETURN_ERR(fail(REPEAT_INITIALIZE, "fake: AscendCL is already initialised"));
	}
	live_init = 1;
	RETURN_ERR(OK);
}

aclError aclFinalize(void) {
	ENTER_ERR("aclFinalize", NULL);
	if (live_init == 0) {
		RETURN_ERR(fail(REPEAT_FINALIZE, "fake: AscendCL is not initialised"));
	}
	live_init = 0;
	RETURN_ERR(OK);
}

static int device_count(void) {
	const char *s = getenv("FAKEACL_DEVICES");
	return s != NULL ? atoi(s) : 1;
}

aclError aclrtSetDevice(int32_t device) {
	ENTER_ERR("aclrtSetDevice", NULL);
	if (!initialised()) {
		RETURN_ERR(fail(UNINITIALIZE, "fake: aclrtSetDevice before aclInit"));
	}
	if (device < 0 || device >= device_count()) {
		RETURN_ERR(fail(RT_INVALID_DEVICEID, "fake: device %d does not exist", device));
	}
	live_device++;
	RETURN_ERR(OK);
}

aclError aclrtResetDevice(int32_t device) {
	ENTER_ERR("aclrtResetDevice", NULL);
	if (device < 0 || device >= device_count() || live_device == 0) {
		RETURN_ERR(fail(RT_INVALID_DEVICEID, "fake: device %d is not set", device));
	}
	live_device--;
	RETURN_ERR(OK);
}

aclError aclrtCreateContext(aclrtContext *context, int32_t device) {
	ENTER_ERR("aclrtCreateContext", NULL);
	if (context == NULL || live_device == 0 || device < 0 || device >= device_count()) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclrtCreateContext needs a set device"));
	}
	void *ctx = malloc(1);
	add_handle(K_CONTEXT, ctx, 0);
	current_context = ctx;
	*context = ctx;
	RETURN_ERR(OK);
}

aclError aclrtDestroyContext(aclrtContext context) {
	ENTER_ERR("aclrtDestroyContext", NULL);
	if (!remove_handle(K_CONTEXT, context)) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: unknown context %p", context));
	}
	if (current_context == context) {
		current_context = NULL;
	}
	free(context);
	RETURN_ERR(OK);
}

aclError aclrtCreateStream(aclrtStream *stream) {
	ENTER_ERR("aclrtCreateStream", NULL);
	int rc = need_context();
	if (rc != OK || stream == NULL) {
		RETURN_ERR(rc != OK ? rc : INVALID_PARAM);
	}
	*stream = malloc(1);
	add_handle(K_STREAM, *stream, 0);
	RETURN_ERR(OK);
}

aclError aclrtDestroyStream(aclrtStream stream) {
	ENTER_ERR("aclrtDestroyStream", NULL);
	int rc = need_context();
	if (rc != OK) {
		RETURN_ERR(rc);
	}
	if (!remove_handle(K_STREAM, stream)) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: unknown stream %p", stream));
	}
	free(stream);
	RETURN_ERR(OK);
}

// ---- API: memory --------------------------------------------------------------

aclError aclrtMalloc(void **ptr, size_t size, int policy) {
	char detail[64];
	snprintf(detail, sizeof(detail), "size=%zu", size);
	ENTER_ERR("aclrtMalloc", detail);
	int rc = need_context();
	if (rc != OK) {
		RETURN_ERR(rc);
	}
	if (ptr == NULL || size == 0 || policy < 0 || policy > 7) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclrtMalloc(size=%zu, policy=%d)", size, policy));
	}
	*ptr = malloc(size);
	add_handle(K_MALLOC, *ptr, size);
	RETURN_ERR(OK);
}

aclError aclrtFree(void *ptr) {
	ENTER_ERR("aclrtFree", NULL);
	int rc = need_context();
	if (rc != OK) {
		RETURN_ERR(rc);
	}
	if (!remove_handle(K_MALLOC, ptr)) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclrtFree of unknown pointer %p", ptr));
	}
	free(ptr);
	RETURN_ERR(OK);
}

aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count, int kind) {
	char detail[64];
	snprintf(detail, sizeof(detail), "kind=%d count=%zu", kind, count);
	ENTER_ERR("aclrtMemcpy", detail);
	int rc = need_context();
	if (rc != OK) {
		RETURN_ERR(rc);
	}
	if (dst == NULL || src == NULL || count > destMax) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclrtMemcpy count %zu > destMax %zu", count, destMax));
	}
	int ok = (kind == 1 && device_range(dst, destMax)) || (kind == 2 && device_range(src, count));
	if (!ok) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclrtMemcpy kind %d with a pointer outside device memory", kind));
	}
	memcpy(dst, src, count);
	RETURN_ERR(OK);
}

// ---- API: data buffers and datasets --------------------------------------

aclDataBuffer *aclCreateDataBuffer(void *data, size_t size) {
	ENTER_VALUE("aclCreateDataBuffer", NULL);
	aclDataBuffer *b = calloc(1, sizeof(*b));
	b->data = data;
	b->size = size;
	add_handle(K_BUFFER, b, 0);
	RETURN_VALUE(b, 0);
}

aclError aclDestroyDataBuffer(const aclDataBuffer *buffer) {
	ENTER_ERR("aclDestroyDataBuffer", NULL);
	if (!remove_handle(K_BUFFER, buffer)) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: unknown data buffer %p", (void *)buffer));
	}
	free((void *)buffer);
	RETURN_ERR(OK);
}

aclmdlDataset *aclmdlCreateDataset(void) {
	ENTER_VALUE("aclmdlCreateDataset", NULL);
	aclmdlDataset *d = calloc(1, sizeof(*d));
	add_handle(K_DATASET, d, 0);
	RETURN_VALUE(d, 0);
}

aclError aclmdlDestroyDataset(const aclmdlDataset *dataset) {
	ENTER_ERR("aclmdlDestroyDataset", NULL);
	if (!remove_handle(K_DATASET, dataset)) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: unknown dataset %p", (void *)dataset));
	}
	free((void *)dataset);
	RETURN_ERR(OK);
}

aclError aclmdlAddDatasetBuffer(aclmdlDataset *dataset, aclDataBuffer *buffer) {
	ENTER_ERR("aclmdlAddDatasetBuffer", NULL);
	if (find_handle(K_DATASET, dataset) < 0 || find_handle(K_BUFFER, buffer) < 0 ||
	    dataset->count == MAX_DATASET_BUFFERS) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclmdlAddDatasetBuffer with an unknown handle"));
	}
	dataset->buffers[dataset->count++] = buffer;
	RETURN_ERR(OK);
}

// ---- API: model load and description -------------------------------------

aclError aclmdlLoadFromFile(const char *modelPath, uint32_t *modelId) {
	ENTER_ERR("aclmdlLoadFromFile", NULL);
	int rc = need_context();
	if (rc != OK) {
		RETURN_ERR(rc);
	}
	if (modelPath == NULL || modelId == NULL) {
		RETURN_ERR(INVALID_PARAM);
	}
	for (uint32_t id = 1; id <= MAX_MODELS; id++) {
		if (!models[id].loaded) {
			rc = load_model(modelPath, &models[id]);
			if (rc != OK) {
				RETURN_ERR(rc);
			}
			models[id].loaded = 1;
			models[id].context = current_context;
			*modelId = id;
			RETURN_ERR(OK);
		}
	}
	RETURN_ERR(fail(GE_LOAD_MODEL, "fake: too many models"));
}

aclError aclmdlUnload(uint32_t modelId) {
	ENTER_ERR("aclmdlUnload", NULL);
	int rc = need_context();
	if (rc != OK) {
		RETURN_ERR(rc);
	}
	if (modelId == 0 || modelId > MAX_MODELS || !models[modelId].loaded) {
		RETURN_ERR(fail(INVALID_MODEL_ID, "fake: model %u is not loaded", modelId));
	}
	models[modelId].loaded = 0;
	RETURN_ERR(OK);
}

aclmdlDesc *aclmdlCreateDesc(void) {
	ENTER_VALUE("aclmdlCreateDesc", NULL);
	aclmdlDesc *d = calloc(1, sizeof(*d));
	add_handle(K_DESC, d, 0);
	RETURN_VALUE(d, 0);
}

aclError aclmdlDestroyDesc(aclmdlDesc *desc) {
	ENTER_ERR("aclmdlDestroyDesc", NULL);
	if (!remove_handle(K_DESC, desc)) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: unknown model description %p", (void *)desc));
	}
	free(desc);
	RETURN_ERR(OK);
}

aclError aclmdlGetDesc(aclmdlDesc *desc, uint32_t modelId) {
	ENTER_ERR("aclmdlGetDesc", NULL);
	if (find_handle(K_DESC, desc) < 0) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: unknown model description"));
	}
	if (modelId == 0 || modelId > MAX_MODELS || !models[modelId].loaded) {
		RETURN_ERR(fail(INVALID_MODEL_ID, "fake: model %u is not loaded", modelId));
	}
	desc->model_id = modelId;
	RETURN_ERR(OK);
}

size_t aclmdlGetNumInputs(aclmdlDesc *desc) {
	ENTER_VALUE("aclmdlGetNumInputs", 0);
	struct model *m = model_of(desc);
	RETURN_VALUE(m != NULL ? (size_t)m->ninputs : 0, m == NULL);
}

size_t aclmdlGetNumOutputs(aclmdlDesc *desc) {
	ENTER_VALUE("aclmdlGetNumOutputs", 0);
	struct model *m = model_of(desc);
	RETURN_VALUE(m != NULL ? (size_t)m->noutputs : 0, m == NULL);
}

size_t aclmdlGetInputSizeByIndex(aclmdlDesc *desc, size_t index) {
	ENTER_VALUE("aclmdlGetInputSizeByIndex", 0);
	struct model *m = model_of(desc);
	int ok = m != NULL && index < (size_t)m->ninputs;
	RETURN_VALUE(ok ? max_bytes(m, (int)index) : 0, !ok);
}

size_t aclmdlGetOutputSizeByIndex(aclmdlDesc *desc, size_t index) {
	ENTER_VALUE("aclmdlGetOutputSizeByIndex", 0);
	struct model *m = model_of(desc);
	// Output i copies input i, so it has the same size.
	int ok = m != NULL && index < (size_t)m->noutputs;
	RETURN_VALUE(ok ? max_bytes(m, (int)index) : 0, !ok);
}

static void tensor_dims(const struct tensor *t, aclmdlIODims *dims) {
	memset(dims, 0, sizeof(*dims));
	snprintf(dims->name, sizeof(dims->name), "%s", t->name);
	dims->dimCount = t->rank;
	memcpy(dims->dims, t->dims, t->rank * sizeof(int64_t));
}

aclError aclmdlGetInputDims(const aclmdlDesc *desc, size_t index, aclmdlIODims *dims) {
	ENTER_ERR("aclmdlGetInputDims", NULL);
	struct model *m = model_of(desc);
	if (m == NULL || dims == NULL || index >= (size_t)m->ninputs) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclmdlGetInputDims(%zu) is out of range", index));
	}
	tensor_dims(&m->inputs[index], dims);
	RETURN_ERR(OK);
}

aclError aclmdlGetOutputDims(const aclmdlDesc *desc, size_t index, aclmdlIODims *dims) {
	ENTER_ERR("aclmdlGetOutputDims", NULL);
	struct model *m = model_of(desc);
	if (m == NULL || dims == NULL || index >= (size_t)m->noutputs) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclmdlGetOutputDims(%zu) is out of range", index));
	}
	tensor_dims(&m->outputs[index], dims);
	RETURN_ERR(OK);
}

aclError aclmdlGetCurOutputDims(const aclmdlDesc *desc, size_t index, aclmdlIODims *dims) {
	ENTER_ERR("aclmdlGetCurOutputDims", NULL);
	struct model *m = model_of(desc);
	if (m == NULL || dims == NULL || index >= (size_t)m->noutputs) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclmdlGetCurOutputDims(%zu) is out of range", index));
	}
	tensor_dims(&m->outputs[index], dims);
	gear_dims(m, (int)index, m->ngears > 0 ? m->current_gear : -1, dims->dims);
	RETURN_ERR(OK);
}

const char *aclmdlGetInputNameByIndex(const aclmdlDesc *desc, size_t index) {
	ENTER_VALUE("aclmdlGetInputNameByIndex", NULL);
	struct model *m = model_of(desc);
	int ok = m != NULL && index < (size_t)m->ninputs;
	RETURN_VALUE(ok ? m->inputs[index].name : NULL, !ok);
}

const char *aclmdlGetOutputNameByIndex(const aclmdlDesc *desc, size_t index) {
	ENTER_VALUE("aclmdlGetOutputNameByIndex", NULL);
	struct model *m = model_of(desc);
	int ok = m != NULL && index < (size_t)m->noutputs;
	RETURN_VALUE(ok ? m->outputs[index].name : NULL, !ok);
}

aclDataType aclmdlGetInputDataType(const aclmdlDesc *desc, size_t index) {
	ENTER_VALUE("aclmdlGetInputDataType", -1);
	struct model *m = model_of(desc);
	int ok = m != NULL && index < (size_t)m->ninputs;
	RETURN_VALUE(ok ? m->inputs[index].dtype : -1, !ok);
}

aclDataType aclmdlGetOutputDataType(const aclmdlDesc *desc, size_t index) {
	ENTER_VALUE("aclmdlGetOutputDataType", -1);
	struct model *m = model_of(desc);
	int ok = m != NULL && index < (size_t)m->noutputs;
	RETURN_VALUE(ok ? m->outputs[index].dtype : -1, !ok);
}

aclError aclmdlGetInputIndexByName(const aclmdlDesc *desc, const char *name, size_t *index) {
	ENTER_ERR("aclmdlGetInputIndexByName", name);
	struct model *m = model_of(desc);
	if (m == NULL || name == NULL || index == NULL) {
		RETURN_ERR(INVALID_PARAM);
	}
	for (int i = 0; i < m->ninputs; i++) {
		if (strcmp(m->inputs[i].name, name) == 0) {
			*index = (size_t)i;
			RETURN_ERR(OK);
		}
	}
	RETURN_ERR(fail(INVALID_PARAM, "fake: the model has no input named %s", name));
}

// ---- API: gears -----------------------------------------------------------

aclError aclmdlGetInputDynamicGearCount(const aclmdlDesc *desc, size_t index, size_t *gearCount) {
	ENTER_ERR("aclmdlGetInputDynamicGearCount", NULL);
	struct model *m = model_of(desc);
	if (m == NULL || gearCount == NULL || index != (size_t)-1) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclmdlGetInputDynamicGearCount index must be -1"));
	}
	*gearCount = (size_t)m->ngears;
	RETURN_ERR(OK);
}

aclError aclmdlGetInputDynamicDims(const aclmdlDesc *desc, size_t index, aclmdlIODims *dims,
                                   size_t gearCount) {
	ENTER_ERR("aclmdlGetInputDynamicDims", NULL);
	struct model *m = model_of(desc);
	if (m == NULL || dims == NULL || index != (size_t)-1 || gearCount < (size_t)m->ngears) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclmdlGetInputDynamicDims needs index -1 and room for %d gears",
		                m != NULL ? m->ngears : 0));
	}
	for (int g = 0; g < m->ngears; g++) {
		full_gear(m, g, &dims[g]);
	}
	RETURN_ERR(OK);
}

aclError aclmdlSetInputDynamicDims(uint32_t modelId, aclmdlDataset *dataset, size_t index,
                                   const aclmdlIODims *dims) {
	char detail[256] = "dims=";
	for (size_t i = 0; dims != NULL && i < dims->dimCount && i < 32; i++) {
		size_t used = strlen(detail);
		snprintf(detail + used, sizeof(detail) - used, "%s%lld", i > 0 ? "," : "", (long long)dims->dims[i]);
	}
	ENTER_ERR("aclmdlSetInputDynamicDims", detail);
	int rc = need_context();
	if (rc != OK) {
		RETURN_ERR(rc);
	}
	if (modelId == 0 || modelId > MAX_MODELS || !models[modelId].loaded) {
		RETURN_ERR(fail(INVALID_MODEL_ID, "fake: model %u is not loaded", modelId));
	}
	struct model *m = &models[modelId];
	if (m->ngears == 0 || index != (size_t)(m->ninputs - 1) || dims == NULL ||
	    find_handle(K_DATASET, dataset) < 0 || dataset->count <= index) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: aclmdlSetInputDynamicDims needs the gear input index %d",
		                m->ninputs - 1));
	}
	for (int g = 0; g < m->ngears; g++) {
		aclmdlIODims want;
		full_gear(m, g, &want);
		if (want.dimCount == dims->dimCount &&
		    memcmp(want.dims, dims->dims, want.dimCount * sizeof(int64_t)) == 0) {
			aclDataBuffer *b = dataset->buffers[index];
			size_t n = (size_t)m->gear_values * sizeof(int64_t);
			if (b->size < n || !device_range(b->data, n)) {
				RETURN_ERR(fail(INVALID_PARAM, "fake: the gear input buffer is too small"));
			}
			memcpy(b->data, m->gears[g], n);
			m->current_gear = g;
			RETURN_ERR(OK);
		}
	}
	RETURN_ERR(fail(GE_DYNAMIC_BATCH_SIZE_INVALID, "fake: the dims are not one of the model's gears"));
}

// ---- API: execution ---------------------------------------------------------

#ifndef FAKEACL_OMIT_EXECUTE
aclError aclmdlExecute(uint32_t modelId, const aclmdlDataset *input, aclmdlDataset *output) {
	ENTER_ERR("aclmdlExecute", NULL);
	int rc = need_context();
	if (rc != OK) {
		RETURN_ERR(rc);
	}
	if (modelId == 0 || modelId > MAX_MODELS || !models[modelId].loaded) {
		RETURN_ERR(fail(INVALID_MODEL_ID, "fake: model %u is not loaded", modelId));
	}
	struct model *m = &models[modelId];
	if (m->context != current_context) {
		RETURN_ERR(fail(RT_CONTEXT_NULL, "fake: model %u was loaded under another context", modelId));
	}
	if (find_handle(K_DATASET, input) < 0 || find_handle(K_DATASET, output) < 0 ||
	    input->count != (size_t)m->ninputs || output->count != (size_t)m->noutputs) {
		RETURN_ERR(fail(INVALID_PARAM, "fake: datasets do not match the model's %d inputs and %d outputs",
		                m->ninputs, m->noutputs));
	}
	int gear = m->ngears > 0 ? m->current_gear : -1;
	for (int i = 0; i < m->noutputs; i++) {
		size_t n = input_bytes(m, i, gear);
		const aclDataBuffer *in = input->buffers[i];
		aclDataBuffer *out = output->buffers[i];
		if (in->size < n || out->size < n || !device_range(in->data, n) || !device_range(out->data, n)) {
			RETURN_ERR(fail(INVALID_PARAM, "fake: buffer %d is smaller than %zu bytes or not device memory", i, n));
		}
		memcpy(out->data, in->data, n);
	}
	RETURN_ERR(OK);
}
#endif

// aclGetRecentErrMsg returns the message of the calling thread's last
// failure, or NULL when there was none.
const char *aclGetRecentErrMsg(void) {
	return recent_message[0] != '\0' ? recent_message : NULL;
}
