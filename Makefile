# The two commands of the README: `make serve` and `make test`. Everything else is a helper.
SHIM := .deps/lib/libtorchshim.so

.PHONY: setup serve test build release bench-ply clean

$(SHIM): scripts/setup.sh scripts/build-shim.sh $(wildcard Sources/CTorchShim/cxx/*) Sources/CTorchShim/include/torch_shim.h
	scripts/setup.sh

setup: $(SHIM)

build: $(SHIM)
	swift build

release: $(SHIM)
	swift build -c release
	cp $(SHIM) .build/release/

serve: release
	.build/release/gen3d serve $(ARGS)

test: $(SHIM)
	swift test --disable-swift-testing

clean:
	rm -rf .build .deps/lib
