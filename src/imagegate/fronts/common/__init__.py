"""What several fronts share above HTTP: task-style submission (Flux, Bria, Replicate) and
turning a wire format's size or aspect ratio into one the model's catalogue entry takes."""
