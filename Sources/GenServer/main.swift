// GenServer entry point.
print("gen3d")
