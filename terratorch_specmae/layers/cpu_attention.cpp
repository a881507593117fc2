// Exact softmax self-attention for bf16 on CPUs with AVX512-BF16, forward and backward.
//
// Why it exists: PyTorch's CPU flash-attention kernel runs the MAE decoder's heads of width 32
// at about a third of the bf16 matmul peak; its q·kᵀ products, with an inner dimension of only
// 32, go through a general GEMM library (≈ 100 GFLOP/s for that shape on a 2-core Zen 4, where
// large bf16 GEMMs reach ≈ 400). Here every product is one register-tiled loop over `vdpbf16ps`,
// with the operands packed once per (sample, head) into bf16 pairs along the inner dimension,
// and each block of query rows keeps its whole row of scores (all keys) in cache, so the softmax
// needs no running rescale. Work is split over (sample, head) pairs with at::parallel_for, so
// the result does not depend on the number of threads.
//
// Layout: qkv is the qkv projection's output, [B, N, 3, H, D] contiguous bf16; the output is
// [B, N, H, D] (= [B, N, H·D], ready for the output projection), and the gradient of qkv comes
// back in qkv's layout. D must be a multiple of 32; any N works (keys are padded to 32 and the
// padding is masked, query rows are padded to 8).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {

using word = uint32_t;  // two bf16 values, the pair `vdpbf16ps` multiplies and adds

constexpr int64_t kRowTile = 8;     // rows of one register tile
constexpr int64_t kColTile = 32;    // columns of one register tile (two vectors of 16 fp32)
constexpr int64_t kQueryBlock = 64; // query rows whose full score rows are kept at once

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

inline uint16_t to_bf16(float x) {  // round to nearest even, as the vector conversion does
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float from_bf16(uint16_t x) {
  uint32_t u = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline word pair(uint16_t lo, uint16_t hi) { return static_cast<word>(lo) | (static_cast<word>(hi) << 16); }

// C[RT x 32] (+)= A[RT x P] · B[P x 32]: A's rows and B's rows are bf16 pairs along the inner dimension.
template <int RT, bool ACC>
inline void tile(const word* A, int64_t lda, const word* B, int64_t ldb, float* C, int64_t ldc, int64_t P) {
  __m512 c0[RT], c1[RT];
#pragma GCC unroll 8
  for (int r = 0; r < RT; ++r) {
    c0[r] = ACC ? _mm512_loadu_ps(C + r * ldc) : _mm512_setzero_ps();
    c1[r] = ACC ? _mm512_loadu_ps(C + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < P; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(B + p * ldb);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(B + p * ldb + 16);
#pragma GCC unroll 8
    for (int r = 0; r < RT; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(A[r * lda + p]));
      c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < RT; ++r) {
    _mm512_storeu_ps(C + r * ldc, c0[r]);
    _mm512_storeu_ps(C + r * ldc + 16, c1[r]);
  }
}

// C[R x Cn] (+)= A[R x P] · B[P x Cn] with R % 8 == 0 and Cn % 32 == 0 (the callers pad). B is stored
// in panels of 32 columns, each [P x 32] contiguous, so a tile reads one contiguous run of memory
// (a row stride of a whole score row, 4 KiB for 1024 keys, would put every row in the same L1 set).
template <bool ACC>
void gemm(const word* A, int64_t lda, const word* B, float* C, int64_t ldc, int64_t R, int64_t Cn, int64_t P) {
  for (int64_t c = 0; c < Cn; c += kColTile)
    for (int64_t r = 0; r < R; r += kRowTile)
      tile<kRowTile, ACC>(A + r * lda, lda, B + c * P, kColTile, C + r * ldc + c, ldc, P);
}

// index of element (row, col) of a [rows x cols] matrix stored in panels of 32 columns
inline int64_t panel(int64_t row, int64_t col, int64_t rows) {
  return (col / kColTile) * rows * kColTile + row * kColTile + col % kColTile;
}

// e^x for x ≤ 88 (smaller arguments clamp to e^-87 ≈ 1.6e-38); relative error ≈ 2e-7.
inline __m512 exp16(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// 16 fp32 → 16 bf16 (round to nearest even)
inline __m256i bf16x16(__m512 x) { return (__m256i)_mm512_cvtneps_pbh(x); }

// rows a and b (16 fp32 each) → 16 words (a[i], b[i])
inline __m512i interleave16(__m512 a, __m512 b) {
  const __m512i lo = _mm512_cvtepu16_epi32(bf16x16(a));
  const __m512i hi = _mm512_cvtepu16_epi32(bf16x16(b));
  return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
}

struct Shape {
  int64_t B, N, H, D;
  int64_t Np, Rp;                   // keys padded to 32, query rows padded to 8
  int64_t row() const { return 3 * H * D; }  // stride of one token in qkv
  int64_t ld() const { return Np + 16; }     // row stride of score buffers (not a multiple of 4 KiB)
};

Shape shape_of(const at::Tensor& qkv, int64_t heads) {
  TORCH_CHECK(qkv.dim() == 3, "cpu attention: qkv must be [B, N, 3·H·D], got ", qkv.sizes());
  TORCH_CHECK(qkv.scalar_type() == at::kBFloat16, "cpu attention: qkv must be bf16, got ", qkv.scalar_type());
  TORCH_CHECK(qkv.is_contiguous(), "cpu attention: qkv must be contiguous");
  const int64_t width = qkv.size(2);
  TORCH_CHECK(heads > 0 && width % (3 * heads) == 0, "cpu attention: width ", width, " is not 3 × ", heads,
              " heads × head width");
  Shape s{qkv.size(0), qkv.size(1), heads, width / (3 * heads), 0, 0};
  TORCH_CHECK(s.D % 32 == 0, "cpu attention: head width must be a multiple of 32, got ", s.D);
  s.Np = round_up(s.N, kColTile);
  s.Rp = round_up(s.N, kRowTile);
  return s;
}

// One head's rows of x (token stride `stride`) into a dense [rows_padded x D] bf16 buffer, zero padding.
void gather_rows(const uint16_t* x, int64_t stride, const Shape& s, uint16_t* out) {
  for (int64_t n = 0; n < s.N; ++n) std::memcpy(out + n * s.D, x + n * stride, s.D * 2);
  std::memset(out + s.N * s.D, 0, (s.Rp - s.N) * s.D * 2);
}

// fp32 rows [rows x D] (query rows first, first+1, ...) times `factor` → bf16 rows of one head in a
// token-major tensor (`head` points at token 0 of the head, `stride` between tokens); rows past N are padding.
void store_rows(const float* x, int64_t rows, int64_t first, const Shape& s, float factor, uint16_t* head,
                int64_t stride) {
  const __m512 f = _mm512_set1_ps(factor);
  for (int64_t r = 0; r < rows && first + r < s.N; ++r)
    for (int64_t d = 0; d < s.D; d += 16)
      _mm256_storeu_si256((__m256i*)(head + (first + r) * stride + d),
                          bf16x16(_mm512_mul_ps(_mm512_loadu_ps(x + r * s.D + d), f)));
}

// [D/2 x Np] words in panels: (p, j) = (x[j][2p], x[j][2p+1]) — the right operand of x_q · x_jᵀ.
void pack_transposed(const uint16_t* x, int64_t stride, const Shape& s, word* out) {
  const int64_t P = s.D / 2;
  for (int64_t j = 0; j < s.Np; ++j) {
    word* dst = out + panel(0, j, P);
    if (j < s.N) {
      const uint16_t* row = x + j * stride;
      for (int64_t p = 0; p < P; ++p) dst[p * kColTile] = pair(row[2 * p], row[2 * p + 1]);
    } else {
      for (int64_t p = 0; p < P; ++p) dst[p * kColTile] = 0;
    }
  }
}

// [Np/2 x D] words in panels: (m, d) = (x[2m][d], x[2m+1][d]) — the right operand of weights · x.
void pack_pairs(const uint16_t* x, int64_t stride, const Shape& s, word* out) {
  const int64_t M = s.Np / 2;
  for (int64_t m = 0; m < M; ++m) {
    const int64_t j = 2 * m;
    for (int64_t d = 0; d < s.D; ++d) {
      const uint16_t a = j < s.N ? x[j * stride + d] : 0;
      const uint16_t b = j + 1 < s.N ? x[(j + 1) * stride + d] : 0;
      out[panel(m, d, M)] = pair(a, b);
    }
  }
}

// [D x rows/2] words: out[d][m] = (x[2m][d], x[2m+1][d]) for a dense [rows x D] block.
void pack_block_transposed(const uint16_t* x, int64_t rows, int64_t D, word* out) {
  const int64_t M = rows / 2;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t d = 0; d < D; ++d) out[d * M + m] = pair(x[2 * m * D + d], x[(2 * m + 1) * D + d]);
}

// fp32 [rows x Np] (row stride ld) → pairs of rows, [rows/2 x Np] words in panels (right operand along rows)
void interleave_rows(const float* x, int64_t ld, int64_t rows, int64_t Np, word* out) {
  const int64_t M = rows / 2;
  for (int64_t m = 0; m < M; ++m) {
    const float* a = x + 2 * m * ld;
    const float* b = a + ld;
    for (int64_t j = 0; j < Np; j += 16)
      _mm512_storeu_si512(out + panel(m, j, M), interleave16(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j)));
  }
}

// fp32 [rows x Np] (row stride ld) times `factor` → bf16 [rows x Np] (= [rows x Np/2] words, pairs along the row)
void to_bf16_rows(const float* x, int64_t ld, int64_t rows, int64_t Np, const float* factor, uint16_t* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 f = _mm512_set1_ps(factor ? factor[r] : 1.0f);
    for (int64_t j = 0; j < Np; j += 16)
      _mm256_storeu_si256((__m256i*)(out + r * Np + j), bf16x16(_mm512_mul_ps(_mm512_loadu_ps(x + r * ld + j), f)));
  }
}

// Masks the scores' padding columns: exp of every key column of one row, e = exp(scale·x − shift), zero past N.
// Returns the row's sum of e.
inline float exp_row(float* row, int64_t N, int64_t Np, float scale, float shift) {
  const __m512 sc = _mm512_set1_ps(scale), sh = _mm512_set1_ps(shift);
  __m512 sum = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= N; j += 16) {
    const __m512 e = exp16(_mm512_fmsub_ps(_mm512_loadu_ps(row + j), sc, sh));
    sum = _mm512_add_ps(sum, e);
    _mm512_storeu_ps(row + j, e);
  }
  if (j < N) {
    const __mmask16 keep = static_cast<__mmask16>((1u << (N - j)) - 1u);
    const __m512 e = _mm512_maskz_mov_ps(keep, exp16(_mm512_fmsub_ps(_mm512_loadu_ps(row + j), sc, sh)));
    sum = _mm512_add_ps(sum, e);
    _mm512_storeu_ps(row + j, e);
    j += 16;
  }
  for (; j < Np; j += 16) _mm512_storeu_ps(row + j, _mm512_setzero_ps());
  return _mm512_reduce_add_ps(sum);
}

}  // namespace

// Returns (out [B, N, H·D] bf16, lse [B, H, N] fp32: the log-sum-exp of each query's scaled scores).
std::vector<at::Tensor> attention_forward(const at::Tensor& qkv, int64_t heads, double scale_d) {
  const Shape s = shape_of(qkv, heads);
  const float scale = static_cast<float>(scale_d);
  const int64_t C = s.H * s.D, P = s.D / 2, ld = s.ld();
  auto out = at::empty({s.B, s.N, C}, qkv.options());
  auto lse = at::empty({s.B, s.H, s.N}, qkv.options().dtype(at::kFloat));
  const uint16_t* base = reinterpret_cast<const uint16_t*>(qkv.data_ptr());
  uint16_t* obase = reinterpret_cast<uint16_t*>(out.data_ptr());
  float* lbase = lse.data_ptr<float>();

  at::parallel_for(0, s.B * s.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint16_t> q(s.Rp * s.D), probs(kQueryBlock * s.Np);
    std::vector<word> kt(P * s.Np), vp(s.Np / 2 * s.D);
    std::vector<float> scores(kQueryBlock * ld), o(kQueryBlock * s.D), inv(kQueryBlock);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / s.H, h = bh % s.H;
      const uint16_t* x = base + b * s.N * s.row() + h * s.D;
      gather_rows(x, s.row(), s, q.data());
      pack_transposed(x + C, s.row(), s, kt.data());
      pack_pairs(x + 2 * C, s.row(), s, vp.data());
      for (int64_t r0 = 0; r0 < s.Rp; r0 += kQueryBlock) {
        const int64_t rows = std::min(kQueryBlock, s.Rp - r0);
        gemm<false>(reinterpret_cast<const word*>(q.data() + r0 * s.D), P, kt.data(), scores.data(), ld, rows, s.Np, P);
        for (int64_t r = 0; r < rows; ++r) {
          float* row = scores.data() + r * ld;
          __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
          int64_t j = 0;
          for (; j + 16 <= s.N; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(row + j));
          if (j < s.N) mx = _mm512_mask_max_ps(mx, static_cast<__mmask16>((1u << (s.N - j)) - 1u), mx,
                                               _mm512_loadu_ps(row + j));
          const float m = _mm512_reduce_max_ps(mx) * scale;
          const float total = exp_row(row, s.N, s.Np, scale, m);
          inv[r] = 1.0f / total;
          if (r0 + r < s.N) lbase[bh * s.N + r0 + r] = m + std::log(total);
        }
        to_bf16_rows(scores.data(), ld, rows, s.Np, inv.data(), probs.data());
        gemm<false>(reinterpret_cast<const word*>(probs.data()), s.Np / 2, vp.data(), o.data(), s.D, rows, s.D,
                    s.Np / 2);
        store_rows(o.data(), rows, r0, s, 1.0f, obase + b * s.N * C + h * s.D, C);
      }
    }
  });
  return {out, lse};
}

// Gradient of qkv ([B, N, 3·H·D] bf16) from the forward's inputs and outputs and the output's gradient.
at::Tensor attention_backward(const at::Tensor& qkv, const at::Tensor& out, const at::Tensor& grad_out,
                              const at::Tensor& lse, int64_t heads, double scale_d) {
  const Shape s = shape_of(qkv, heads);
  const float scale = static_cast<float>(scale_d);
  const int64_t C = s.H * s.D, P = s.D / 2, ld = s.ld();
  TORCH_CHECK(out.is_contiguous() && grad_out.is_contiguous() && grad_out.scalar_type() == at::kBFloat16 &&
                  out.scalar_type() == at::kBFloat16,
              "cpu attention: out and its gradient must be contiguous bf16");
  TORCH_CHECK(grad_out.sizes() == out.sizes() && out.size(0) == s.B && out.size(1) == s.N && out.size(2) == C,
              "cpu attention: output gradient of shape ", grad_out.sizes(), " does not match ", out.sizes());
  TORCH_CHECK(lse.is_contiguous() && lse.scalar_type() == at::kFloat && lse.numel() == s.B * s.H * s.N,
              "cpu attention: lse must be the forward's [B, H, N] fp32");
  auto grad = at::empty_like(qkv);
  const uint16_t* base = reinterpret_cast<const uint16_t*>(qkv.data_ptr());
  const uint16_t* obase = reinterpret_cast<const uint16_t*>(out.data_ptr());
  const uint16_t* gobase = reinterpret_cast<const uint16_t*>(grad_out.data_ptr());
  const float* lbase = lse.data_ptr<float>();
  uint16_t* gbase = reinterpret_cast<uint16_t*>(grad.data_ptr());

  at::parallel_for(0, s.B * s.H, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint16_t> q(s.Rp * s.D), go(s.Rp * s.D), ds_rows(kQueryBlock * s.Np);
    std::vector<float> delta(s.Rp), lse_h(s.Rp);
    std::vector<word> kt(P * s.Np), vt(P * s.Np), kp(s.Np / 2 * s.D);
    std::vector<float> p(kQueryBlock * ld), dp(kQueryBlock * ld), dq(kQueryBlock * s.D);
    std::vector<word> p_pairs(kQueryBlock / 2 * s.Np), ds_pairs(kQueryBlock / 2 * s.Np);
    std::vector<word> go_t(s.D * kQueryBlock / 2), q_t(s.D * kQueryBlock / 2);
    std::vector<float> dkt(s.D * ld), dvt(s.D * ld);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / s.H, h = bh % s.H;
      const uint16_t* x = base + b * s.N * s.row() + h * s.D;
      gather_rows(x, s.row(), s, q.data());
      pack_transposed(x + C, s.row(), s, kt.data());
      pack_transposed(x + 2 * C, s.row(), s, vt.data());
      pack_pairs(x + C, s.row(), s, kp.data());
      gather_rows(gobase + b * s.N * C + h * s.D, C, s, go.data());
      for (int64_t n = 0; n < s.Rp; ++n) {
        float acc = 0.f;
        if (n < s.N) {
          const uint16_t* orow = obase + (b * s.N + n) * C + h * s.D;
          for (int64_t d = 0; d < s.D; ++d) acc += from_bf16(orow[d]) * from_bf16(go[n * s.D + d]);
        }
        delta[n] = acc;
        lse_h[n] = n < s.N ? lbase[bh * s.N + n] : std::numeric_limits<float>::infinity();
      }
      std::fill(dkt.begin(), dkt.end(), 0.f);
      std::fill(dvt.begin(), dvt.end(), 0.f);
      for (int64_t r0 = 0; r0 < s.Rp; r0 += kQueryBlock) {
        const int64_t rows = std::min(kQueryBlock, s.Rp - r0);
        // P = exp(scale·q·kᵀ − lse), dP = dO·vᵀ, dS = P ∘ (dP − rowsum(dO ∘ O))
        gemm<false>(reinterpret_cast<const word*>(q.data() + r0 * s.D), P, kt.data(), p.data(), ld, rows, s.Np, P);
        gemm<false>(reinterpret_cast<const word*>(go.data() + r0 * s.D), P, vt.data(), dp.data(), ld, rows, s.Np, P);
        for (int64_t r = 0; r < rows; ++r) {
          float* prow = p.data() + r * ld;
          float* drow = dp.data() + r * ld;
          exp_row(prow, s.N, s.Np, scale, lse_h[r0 + r]);
          const __m512 dl = _mm512_set1_ps(delta[r0 + r]);
          for (int64_t j = 0; j < s.Np; j += 16)
            _mm512_storeu_ps(drow + j, _mm512_mul_ps(_mm512_loadu_ps(prow + j), _mm512_sub_ps(_mm512_loadu_ps(drow + j), dl)));
        }
        // dQ = scale · dS · k
        to_bf16_rows(dp.data(), ld, rows, s.Np, nullptr, ds_rows.data());
        gemm<false>(reinterpret_cast<const word*>(ds_rows.data()), s.Np / 2, kp.data(), dq.data(), s.D, rows, s.D,
                    s.Np / 2);
        store_rows(dq.data(), rows, r0, s, scale, gbase + b * s.N * s.row() + h * s.D, s.row());
        // dVᵀ += dOᵀ · P and dKᵀ += qᵀ · dS (scaled at the end), pairs along the query rows
        interleave_rows(p.data(), ld, rows, s.Np, p_pairs.data());
        interleave_rows(dp.data(), ld, rows, s.Np, ds_pairs.data());
        pack_block_transposed(go.data() + r0 * s.D, rows, s.D, go_t.data());
        pack_block_transposed(q.data() + r0 * s.D, rows, s.D, q_t.data());
        gemm<true>(go_t.data(), rows / 2, p_pairs.data(), dvt.data(), ld, s.D, s.Np, rows / 2);
        gemm<true>(q_t.data(), rows / 2, ds_pairs.data(), dkt.data(), ld, s.D, s.Np, rows / 2);
      }
      for (int64_t n = 0; n < s.N; ++n) {
        uint16_t* dk = gbase + (b * s.N + n) * s.row() + C + h * s.D;
        uint16_t* dv = dk + C;
        for (int64_t d = 0; d < s.D; ++d) {
          dk[d] = to_bf16(dkt[d * ld + n] * scale);
          dv[d] = to_bf16(dvt[d * ld + n]);
        }
      }
    }
  });
  return grad;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &attention_forward, "softmax attention forward (bf16, AVX512-BF16)");
  m.def("backward", &attention_backward, "softmax attention backward (bf16, AVX512-BF16)");
}
