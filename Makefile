# kpool - build, test, demo.
#
#   make            build build/kpool, build/kpool-worker, build/kpool-stub-llm
#   make test       install what is missing, unit tests under ASan+UBSan,
#                   integration tests against a local Kafka broker
#   make demo       the demo: 3 workers answer 9 questions
#   make bench      throughput and latency figures
#   make lint       clang-format check and clang-tidy
#
# Every top-level target first runs scripts/setup, which installs only
# what is missing, then re-enters make so the flags below see it.

SHELL := /bin/bash
BUILD ?= build
CC ?= gcc

SETUP_ENV := $(shell scripts/setup env 2>/dev/null)
RDK_PC := $(patsubst KPOOL_RDKAFKA_PC=%,%,$(filter KPOOL_RDKAFKA_PC=%,$(SETUP_ENV)))
PKG := PKG_CONFIG_PATH=$(RDK_PC) pkg-config
PKGS := rdkafka libcurl json-c
RDK_LIBDIR := $(shell $(PKG) --variable=libdir rdkafka 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wstrict-prototypes \
        -Wmissing-prototypes -Wformat=2 -Wvla
CFLAGS ?= -O2 -g
# Library headers as system headers: their warnings are not ours.
CPPFLAGS += -D_GNU_SOURCE -Icommon \
    $(patsubst -I%,-isystem %,$(shell $(PKG) --cflags $(PKGS) 2>/dev/null))
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(CPPFLAGS)
LDLIBS += $(shell $(PKG) --libs $(PKGS) 2>/dev/null) -lm
comma := ,
LDFLAGS += $(if $(RDK_LIBDIR),-Wl$(comma)-rpath$(comma)$(RDK_LIBDIR))

SAN := -fsanitize=address,undefined -fno-omit-frame-pointer \
       -fno-sanitize-recover=undefined

COMMON_SRC := $(wildcard common/*.c)
WORKER_SRC := $(wildcard consumer/*.c)
KPOOL_SRC := $(wildcard producer/*.c)
STUB_SRC := $(wildcard tests/stub/*.c)
BENCH_SRC := $(wildcard tests/bench/*.c)
MOCK_SRC := $(wildcard tests/mock/*.c)
TXN_SRC := tests/tools/txn_produce.c
UNIT_SRC := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
sobj = $(patsubst %.c,$(BUILD)/asan/obj/%.o,$(1))

BINS := $(BUILD)/kpool $(BUILD)/kpool-worker $(BUILD)/kpool-stub-llm \
        $(BUILD)/kpool-bench $(BUILD)/kpool-txn-produce \
        $(BUILD)/kpool-mock-faults
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/asan/%,$(UNIT_SRC))
ASAN_BINS := $(BUILD)/asan/kpool $(BUILD)/asan/kpool-worker \
             $(BUILD)/asan/kpool-stub-llm $(BUILD)/asan/kpool-mock-faults \
             $(BUILD)/asan/kpool-txn-produce

.PHONY: all bins deps test check unit integration demo bench lint format \
        clean asan

all: deps
	@$(MAKE) --no-print-directory bins

deps:
	@scripts/setup deps

bins: $(BINS)

asan: $(UNIT_BINS) $(ASAN_BINS)

$(BUILD)/libkpool.a: $(call obj,$(COMMON_SRC))
	ar rcs $@ $^

$(BUILD)/asan/libkpool.a: $(call sobj,$(COMMON_SRC))
	ar rcs $@ $^

$(BUILD)/obj/%.o: %.c $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/asan/obj/%.o: %.c $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -c -o $@ $<

$(BUILD)/kpool: $(call obj,$(KPOOL_SRC)) $(BUILD)/libkpool.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kpool-worker: $(call obj,$(WORKER_SRC)) $(BUILD)/libkpool.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kpool-stub-llm: $(call obj,$(STUB_SRC)) $(BUILD)/libkpool.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lmicrohttpd

$(BUILD)/kpool-bench: $(call obj,$(BENCH_SRC)) $(BUILD)/libkpool.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kpool-mock-faults: $(call obj,$(MOCK_SRC)) $(BUILD)/libkpool.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kpool-txn-produce: $(call obj,$(TXN_SRC))
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/kpool: $(call sobj,$(KPOOL_SRC)) $(BUILD)/asan/libkpool.a
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/kpool-worker: $(call sobj,$(WORKER_SRC)) $(BUILD)/asan/libkpool.a
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/kpool-mock-faults: $(call sobj,$(MOCK_SRC)) $(BUILD)/asan/libkpool.a
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/kpool-txn-produce: $(call sobj,$(TXN_SRC))
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/kpool-stub-llm: $(call sobj,$(STUB_SRC)) $(BUILD)/asan/libkpool.a
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lmicrohttpd

$(BUILD)/asan/test_%: $(BUILD)/asan/obj/tests/unit/test_%.o $(BUILD)/asan/libkpool.a
	$(CC) $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka -lmicrohttpd

# The tests: scripts/test does the setup, the broker and the runs.
test:
	@scripts/test

# Unit tests only (no broker needed).
unit: deps
	@$(MAKE) --no-print-directory asan
	@scripts/test unit

integration: deps
	@scripts/test integration

demo:
	@scripts/demo

bench:
	@scripts/bench

lint: deps
	@scripts/lint

format:
	clang-format -i $(wildcard common/*.[ch] consumer/*.[ch] producer/*.[ch] \
	    tests/*/*.[ch])

clean:
	rm -rf $(BUILD)
