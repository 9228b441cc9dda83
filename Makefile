# tessera — build, run, test. `make help` lists the targets.
.DEFAULT_GOAL := all
.SUFFIXES:

CC ?= cc
PKG_CONFIG ?= pkg-config
LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp

# SANITIZER=address,undefined or SANITIZER=thread builds into its own directory.
SANITIZER ?=
ifeq ($(SANITIZER),)
  BUILD := build
  SAN :=
  OPT := -O2 -D_FORTIFY_SOURCE=2
else ifeq ($(SANITIZER),thread)
  BUILD := build/tsan
  SAN := -fsanitize=thread
  OPT := -O1
else
  BUILD := build/asan
  SAN := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPT := -O1
endif

CSTD := -std=c11 -D_GNU_SOURCE
WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
        -Wformat=2 -Wvla -Werror=implicit-function-declaration
ifneq ($(CI),)
  WARN += -Werror
endif
DEBUG := -g
HARDEN := -fstack-protector-strong -fPIE
# The build's Debian packages are installed before anything else is read: make builds this
# stamp first, then reads the Makefile again, so pkg-config below and the llhttp sources are
# found on a fresh machine, with -j too.
ifeq ($(filter clean help format format-check,$(MAKECMDGOALS)),)
include build/.deps.mk
endif
build/.deps.mk: .ci/deps
	@mkdir -p build
	$(Q).ci/deps build && echo '# .ci/deps build ran; delete to run it again' >$@

DEPS_CFLAGS := $(shell $(PKG_CONFIG) --cflags openssl libcjson libnghttp2 2>/dev/null)
DEPS_LIBS := $(shell $(PKG_CONFIG) --libs openssl libcjson libnghttp2 2>/dev/null)

ALL_CFLAGS := $(CSTD) $(WARN) $(OPT) $(DEBUG) $(SAN) $(HARDEN) -I$(LLHTTP_INC) $(DEPS_CFLAGS) \
              -MMD -MP $(CFLAGS)
LLHTTP_CFLAGS := -std=c11 -O2 $(DEBUG) $(SAN) -fPIE -I$(LLHTTP_INC) -w $(CFLAGS)
LDFLAGS_ALL := $(SAN) -pie -Wl,-z,relro,-z,now $(LDFLAGS)
LIBS := $(DEPS_LIBS) -lpthread

ifeq ($(V),)
  Q := @
  say = @printf '  %-7s %s\n' $(1) $(2);
else
  Q :=
  say :=
endif

SRCS := $(wildcard src/*.c)
OBJS := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
LIB_OBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
LLHTTP_OBJS := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOLS := $(BUILD)/tlsprobe $(BUILD)/resume-load

.PHONY: all deps run serve test unit integration certs asan tsan fuzz bench format format-check clean help tools

all: deps $(BUILD)/tessera $(TOOLS)

deps:
	$(Q).ci/deps build

$(BUILD)/tessera: $(OBJS) $(LLHTTP_OBJS)
	$(call say,LINK,$@)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/obj/%.o: src/%.c | deps
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c | deps
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(LLHTTP_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) $(LLHTTP_OBJS)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) -Isrc $(LDFLAGS_ALL) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/tlsprobe: tests/tools/tlsprobe.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $< $(LIBS)

# a benchmark client, built like the server is so that `make` gives every tool README shows
$(BUILD)/resume-load: bench/resume-load.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(ALL_CFLAGS) $(LDFLAGS_ALL) -o $@ $< $(LIBS)

tools: $(TOOLS)

# the script does nothing when every file is there and makes the whole set when one is missing
certs:
	$(Q)certs/make-certs.sh certs

# make run [PORT=9443]: conf/tessera.json, which listens on 127.0.0.1:8443 (this machine
# only); PORT= replaces that with 127.0.0.1:PORT, as make serve does
run: all certs
	$(BUILD)/tessera --config conf/tessera.json$(if $(PORT), --listen 127.0.0.1:$(PORT))

# make serve DIR=path/to/site [PORT=8443]: that directory with the built-in defaults
serve: all certs
	$(if $(DIR),,$(error make serve needs DIR=the directory to serve, e.g. make serve DIR=www))
	$(BUILD)/tessera --serve '$(DIR)' --listen 127.0.0.1:$(or $(PORT),8443)

unit: deps-test $(UNIT_BINS)
	$(Q)tests/run.sh unit $(BUILD)

integration: deps-test all
	$(Q)tests/run.sh integration $(BUILD)

# Under CI (CI=true) the suite also runs under ASan+UBSan and TSan, and the fuzzers run.
ifeq ($(CI),)
test: deps-test all certs $(UNIT_BINS)
	$(Q)tests/run.sh all $(BUILD)
else
test: deps-test all certs $(UNIT_BINS) fuzz-build
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined all \
	    $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
	$(Q)$(MAKE) --no-print-directory SANITIZER=thread all
	$(Q)tests/run.sh ci $(BUILD)
endif

.PHONY: deps-test
deps-test:
	$(Q).ci/deps test

# libFuzzer targets (clang): tests/fuzz/fuzz_*.c against the server's objects built with
# ASan+UBSan. `make fuzz` runs each for FUZZ_SECONDS on a copy of its seed corpus.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := $(CSTD) -g -O1 $(FUZZ_SAN) -fsanitize=fuzzer-no-link -I$(LLHTTP_INC) $(DEPS_CFLAGS) \
               -MMD -MP
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_OBJS := $(patsubst src/%.c,build/fuzz/obj/%.o,$(filter-out src/main.c,$(SRCS))) \
             build/fuzz/llhttp/llhttp.o build/fuzz/llhttp/api.o build/fuzz/llhttp/http.o

build/fuzz/obj/%.o: src/%.c | deps
	@mkdir -p $(dir $@)
	$(call say,FUZZCC,$<)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

build/fuzz/llhttp/%.o: $(LLHTTP_SRC)/%.c | deps
	@mkdir -p $(dir $@)
	$(call say,FUZZCC,$<)$(FUZZ_CC) $(FUZZ_CFLAGS) -w -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	$(call say,FUZZLD,$@)$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(LIBS)

.SECONDARY: $(FUZZ_OBJS)
.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_TARGETS)

fuzz: deps-test fuzz-build
	$(Q)tests/fuzz/run.sh $(FUZZ_SECONDS)

asan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined all

tsan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=thread all

# Benchmarks against nginx and h2o: bench/run.sh --help (BENCH_DURATION, BENCH_REPS, BENCH_SCENARIOS).
bench: all
	$(Q).ci/deps bench
	$(Q)bench/run.sh $(BUILD)

FORMAT_FILES = $(wildcard src/*.c src/*.h tests/unit/*.c tests/tools/*.c tests/fuzz/*.c bench/*.c)
format:
	clang-format -i $(FORMAT_FILES)

# what tests/integration/05-build-targets.sh runs: fails on any file `make format` would change
format-check:
	$(Q)clang-format --dry-run -Werror $(FORMAT_FILES)

clean:
	rm -rf build

help:
	@echo "make run [PORT=...] | serve DIR=... [PORT=...] | test | unit | integration | certs | tools | asan | tsan | fuzz | bench | format | format-check | clean"

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d) $(FUZZ_OBJS:.o=.d) $(FUZZ_TARGETS:=.d)
