// Package serve is `mmadac serve`: an HTTP API around one loaded MMaDA
// model and a web page that shows the unmasking live.
//
// # Endpoints
//
//	POST /v1/text   prompt or prompt_ids, steps, gen_length, block_length,
//	                temperature, cfg_scale, remasking, seed
//	POST /v1/mmu    the text fields plus an image: a multipart/form-data
//	                file part "image" (other fields as text parts), or
//	                base64 in the JSON field image; squash picks the
//	                direct resize over resize-and-crop
//	POST /v1/t2i    prompt or prompt_ids (the caption), guidance_scale,
//	                timesteps, temperature, seed
//	GET  /v1/health 200 while requests are admitted, 503 during shutdown
//	GET  /v1/models the loaded models, enabled endpoints, defaults, limits
//	GET  /          the demo page (page.html, embedded)
//
// Absent fields take the CLI's defaults (sampler.DefaultTextParams, and
// guidance 3.5, 15 timesteps, temperature 1 for t2i), and the sampler's
// Validate methods check them, so the server accepts exactly what
// `mmadac run` accepts, within the Limits. A rejected request gets a 4xx
// JSON body {"id", "error", "field", "status"} whose field names the JSON
// field at fault. Prompt text needs a tokenizer; without one the server
// answers 400 and asks for prompt_ids. Text prompts are laid out with the
// chat template (frontend/prompt.Chat), t2i captions with prompt.T2I.
//
// The text and mmu result is {"id", "ids", "text", "prompt_length",
// "steps", "elapsed_ms", "tokens_per_second", "batch"}: ids is the whole
// sequence, prompt included, and text is null without a tokenizer. The t2i
// result is {"id", "codes", "png" (base64), "width", "height", "steps",
// "elapsed_ms", "batch"}.
//
// # Event stream
//
// With Accept: text/event-stream the response is a stream of events, each
// an "event: NAME" line, a "data: JSON" line and an empty line:
//
//	queued   {"id", "position"}                       on admission
//	start    the prompt ids and lengths, when the batch starts
//	step     text: step, steps, block, blocks, positions, tokens,
//	         confidences, pieces (with a tokenizer), unmasked,
//	         elapsed_ms, tokens_per_second
//	         t2i: step, steps, masked, elapsed_ms
//	preview  t2i, every Config.PreviewEvery steps: step, masked, png
//	         (masked positions painted mid-grey)
//	result   the result JSON above, last
//	error    the error JSON above, last, instead of result
//
// # Queue and batching
//
// One worker runs every sampler call, behind a FIFO queue of at most
// Config.MaxQueue waiting requests (one more is answered 429 with
// Retry-After). The worker takes the oldest request and every waiting
// request with the same batch key, up to Config.MaxBatch, as one sampler
// call: for text and mmu the key is the sampler parameters and the prompt
// length (mmu images of one batch are encoded by one encoder call), for
// t2i the guidance, timesteps and temperature. Seeds may differ: each row
// draws the noise its request would draw alone (batchNoise), so a result
// does not depend on batching.
//
// A request ends when its client disconnects or after
// Config.RequestTimeout (504). A waiting request leaves the queue at once;
// a running batch stops when all of its clients are gone, otherwise the
// row is computed to the end of the call and dropped.
//
// Shutdown stops admission (503), lets queued and running requests finish
// until its context ends, then cancels the rest, and returns and logs the
// ids of the requests that finished and of those cancelled.
//
// # Safety
//
// The command listens on 127.0.0.1 unless --listen says otherwise. Request
// bodies, images (bytes and pixels), prompts, steps, lengths, guidance and
// temperature are bounded (Limits). Multipart bodies are read in memory
// within those bounds, never into temporary files, and no request value is
// used as a file path or passed to a program.
package serve
