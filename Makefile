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
DEPS_CFLAGS := $(shell $(PKG_CONFIG) --cflags openssl libcjson 2>/dev/null)
DEPS_LIBS := $(shell $(PKG_CONFIG) --libs openssl libcjson 2>/dev/null)

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
TOOLS := $(BUILD)/tlsprobe

.PHONY: all deps run test unit integration certs asan tsan fuzz bench format clean help tools

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

tools: $(TOOLS)

certs/ca.crl:
	$(Q)certs/make-certs.sh certs

certs: certs/ca.crl

run: all certs
	$(BUILD)/tessera --config conf/tessera.json

unit: deps-test $(UNIT_BINS)
	$(Q)tests/run.sh unit $(BUILD)

integration: deps-test all
	$(Q)tests/run.sh integration $(BUILD)

test: deps-test all certs $(UNIT_BINS)
	$(Q)tests/run.sh all $(BUILD)

.PHONY: deps-test
deps-test:
	$(Q).ci/deps test

asan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined all

tsan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=thread all

format:
	clang-format -i src/*.c src/*.h tests/unit/*.c tests/tools/*.c

clean:
	rm -rf build

help:
	@echo "make run | test | unit | integration | certs | asan | tsan | format | clean"

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d)
