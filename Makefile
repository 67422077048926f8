# kilnet: a Gemini and Gopher server for the Keep it Local Network.
# make          build ./kilnet
# make run      install missing packages, build, serve the default dataset on loopback
# make test     the whole test suite, against the normal and the ASan/UBSan build
# make bench    benchmarks (not part of make test)

CC       ?= cc
PKGS      = libevent libevent_openssl openssl libconfig
# Debian packages the build, the tests and make run need.
DEB_PKGS  = gcc make pkg-config libevent-dev libssl-dev libconfig-dev \
            libunistring-dev openssl curl lynx procps iproute2
PREFIX   ?= /usr/local
DEFAULT_CONF ?= conf/kilnet.conf

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE \
            -DKILNET_DEFAULT_CONF='"$(DEFAULT_CONF)"' $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lunistring
ASAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRCS     := $(wildcard src/*.c)
OBJS     := $(SRCS:src/%.c=build/%.o)
AOBJS    := $(SRCS:src/%.c=build/asan/%.o)
TESTBINS := $(patsubst tests/%.c,tests/bin/%,$(wildcard tests/*.c)) bench/bin/loadgen

.PHONY: all deps asan test test-quick run bench clean

all: kilnet

kilnet: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

kilnet-asan: $(AOBJS)
	$(CC) $(CFLAGS) $(ASAN) $(LDFLAGS) -o $@ $(AOBJS) $(LDLIBS)

asan: kilnet-asan

build/%.o: src/%.c src/kilnet.h | build
	$(CC) $(CFLAGS) -c -o $@ $<

build/asan/%.o: src/%.c src/kilnet.h | build
	$(CC) $(CFLAGS) $(ASAN) -c -o $@ $<

build:
	mkdir -p build/asan

tests/bin/%: tests/%.c
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# Installs only what is missing; apt-get update runs only when something is.
deps:
	@missing=; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Both builds run the whole suite: the ASan/UBSan run catches memory errors the
# plain run cannot see.
test: deps
	$(MAKE) kilnet kilnet-asan $(TESTBINS)
	KILNET=./kilnet bash tests/run.sh
	KILNET=./kilnet-asan bash tests/run.sh

# One pass against the normal build, for quick iteration.
test-quick: kilnet $(TESTBINS)
	KILNET=./kilnet bash tests/run.sh $(T)

run: deps
	$(MAKE) kilnet
	@echo "kilnet: serving gemini://localhost:1965/ and gopher://localhost:7070/ (Ctrl-C stops)"
	./kilnet -c $(DEFAULT_CONF) --hostname localhost \
	  --gemini 127.0.0.1:1965 --gopher 127.0.0.1:7070

bench: deps
	-$(MAKE) kilnet
	$(MAKE) bench/bin/loadgen bench/bin/floor
	bash bench/run.sh

# The bench's load generator and floor server (bench/): OpenSSL only.
bench/bin/%: bench/%.c
	@mkdir -p bench/bin
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE $(shell pkg-config --cflags openssl) \
	  -o $@ $< $(shell pkg-config --libs openssl)

clean:
	rm -rf build kilnet kilnet-asan tests/bin bench/bin
