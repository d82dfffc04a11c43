package dev.anvil.bench.harness;

import dev.anvil.engine.model.GptConfig;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class FlopsTest {

    @Test
    void tinyPresetByHand() {
        // L=2, C=64, T=64, V=512: wte 512·64 + wpe 64·64 + 2 blocks of 49,984 + ln_f 128 = 136,960 parameters;
        // 6 · 136,960 + 6 · 2 · 64 · 64 = 821,760 + 49,152.
        assertEquals(136_960, GptConfig.preset("tiny").parameterCount());
        assertEquals(870_912, Flops.perToken(GptConfig.preset("tiny"), 64));
    }

    @Test
    void mfuByHand() {
        // 6 · 1e8 + 6 · 12 · 768 · 1024 = 656,623,104 FLOPs per token; at 100,000 tokens/s that is
        // 65.662 TFLOPS, 6.639% of an H100 SXM's 989 dense bf16 TFLOPS.
        long perToken = Flops.perToken(100_000_000L, 12, 768, 1024);
        assertEquals(656_623_104L, perToken);
        assertEquals(0.0663926, Flops.mfu(perToken, 100_000, 989, 1), 1e-7);
        // The same tokens/s summed over 8 GPUs is an eighth of the utilisation.
        assertEquals(0.0663926 / 8, Flops.mfu(perToken, 100_000, 989, 8), 1e-8);
    }

    @Test
    void gpt2SmallCountsEveryParameter() {
        // 124,475,904 with the vocabulary padded to 50,304, as llm.c counts; the attention term at T=1024.
        GptConfig gpt2 = GptConfig.preset("gpt2-124m");
        assertEquals(124_475_904L, gpt2.parameterCount());
        assertEquals(6 * 124_475_904L + 6L * 12 * 768 * 1024, Flops.perToken(gpt2, 1024));
    }
}
