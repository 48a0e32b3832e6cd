"""Writes the pickle/.npy fixtures under test/fixtures/pickle with real pickle and numpy.

Run: .venv/bin/python scripts/make_pickle_fixtures.py
Everything is seeded and small (< 300 KB in all); expected.json holds the values the
TypeScript tests compare against, computed here with numpy (the oracle).
"""
import json
import os
import pickle
import shutil
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'pickle')
rng = np.random.default_rng(20260125)
expected = {}


def dump(name, obj, protocol, **kw):
    with open(os.path.join(OUT, name), 'wb') as f:
        pickle.dump(obj, f, protocol=protocol, **kw)


def features(n, length, dim, lengths):
    """[n, length, dim] float32, zero padded after each sample's length (as MMSA pads)."""
    x = rng.normal(size=(n, length, dim)).astype(np.float32)
    for i, l in enumerate(lengths):
        x[i, max(0, min(l, length)):] = 0
    return x


def kept(x, lengths):
    return [x[i, :max(0, min(int(l), x.shape[1]))] for i, l in enumerate(lengths)]


def summarize_split(split, audio, vision, a_len, v_len):
    a_kept, v_kept = kept(audio, a_len), kept(vision, v_len)
    clean = lambda arrs: [np.where(np.isfinite(a), a, 0).astype(np.float32) for a in arrs]
    return {
        'n': int(audio.shape[0]),
        'audioFrames': [int(a.shape[0]) for a in a_kept],
        'visionFrames': [int(v.shape[0]) for v in v_kept],
        'audioSums': [float(np.float64(a.astype(np.float64).sum())) for a in clean(a_kept)],
        'visionSums': [float(np.float64(v.astype(np.float64).sum())) for v in clean(v_kept)],
        'cleaned': {
            'audio': int(sum((~np.isfinite(a)).sum() for a in a_kept)),
            'vision': int(sum((~np.isfinite(v)).sum() for v in v_kept)),
        },
        'clamped': int(sum(1 for l, L in [(l, audio.shape[1]) for l in a_len] + [(l, vision.shape[1]) for l in v_len] if l <= 0 or l > L)),
    }


def mmsa(dataset, sizes, la, da, lv, dv, texts, label_range, unimodal):
    data, summary = {}, {}
    for split, n in sizes.items():
        a_len = [int(rng.integers(2, la + 1)) for _ in range(n)]
        v_len = [int(rng.integers(2, lv + 1)) for _ in range(n)]
        audio, vision = features(n, la, da, a_len), features(n, lv, dv, v_len)
        lo, hi = label_range
        labels = np.round(rng.uniform(lo, hi, size=n), 1).astype(np.float32)
        d = {
            'raw_text': None, 'audio': audio, 'vision': vision,
            'id': np.array([f'{dataset}_{split}_{i}$_${i}' for i in range(n)], dtype=object),
            'regression_labels': labels,
            'classification_labels': (labels > 0).astype(np.float32),
            'annotations': np.array(['Positive' if l > 0 else 'Negative' for l in labels]),
            'audio_lengths': a_len, 'vision_lengths': np.array(v_len, dtype=np.int64),
            'text': rng.normal(size=(n, 3, 8)).astype(np.float32),
            'text_bert': rng.integers(0, 30000, size=(n, 3, 5)).astype(np.int64),
        }
        d['raw_text'] = texts[split]
        if unimodal:
            for m in 'TAV':
                d[f'regression_labels_{m}'] = np.round(rng.uniform(lo, hi, size=n), 1).astype(np.float32)
        data[split] = d
    return data


def finish_mmsa(data, boundary):
    # Non-finite values at known places, some inside the kept frames, one in the padding.
    tr = data['train']
    tr['audio'][0, 1, 3:5] = -np.inf
    tr['audio'][1, 0, 0] = np.inf
    tr['audio'][0, -1, 0] = -np.inf  # padding of sample 0 (its length is < La) → cut, not counted
    tr['audio_lengths'][0] = min(tr['audio_lengths'][0], tr['audio'].shape[1] - 1)
    data['valid']['vision'][0, 0, 0:3] = np.nan
    data['test']['vision'][1, 1, 2] = np.nan
    # Lengths MMSA gets wrong: 0 and longer than the padding (clamped and counted).
    data['test']['audio_lengths'][0] = 0
    data['test']['vision_lengths'][0] = data['test']['vision'].shape[1] + 7
    data['train']['regression_labels'][0] = boundary
    out = {}
    for split, d in data.items():
        s = summarize_split(split, d['audio'], d['vision'], d['audio_lengths'], d['vision_lengths'])
        s['ids'] = [str(x) for x in d['id']]
        s['text'] = [str(x) for x in d['raw_text']]
        s['labels'] = [float(x) for x in d['regression_labels']]
        for m in 'TAV':
            if f'regression_labels_{m}' in d:
                s[f'labels{m}'] = [float(x) for x in d[f'regression_labels_{m}']]
        out[split] = s
    return out


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)

    # MOSEI-shaped MMSA pickle: audio 74 (COVAREP), vision 35 (Facet).
    mosei_texts = {
        'train': np.array(['i really liked it', 'it was boring', 'fine, I guess'], dtype=object),
        'valid': np.array(['great acting', 'not good at all'], dtype=object),
        'test': np.array(['okay', 'the worst movie "ever"'], dtype=object),
    }
    mosei = mmsa('mosei', {'train': 3, 'valid': 2, 'test': 2}, 8, 74, 6, 35, mosei_texts, (-3, 3), False)
    expected['mosei'] = finish_mmsa(mosei, -3.0)
    for p in (2, 4, 5):
        dump(f'mosei_unaligned_p{p}.pkl', mosei, p)

    # SIMS-V2-shaped: audio 25, vision 177, Chinese text, unimodal labels.
    sims_texts = {
        'train': np.array(['今天天气真好，我很开心。', '这部电影太无聊了']),
        'valid': np.array(['还行吧']),
        'test': np.array(['我不喜欢这个结局', '说不上好坏']),
    }
    sims = mmsa('simsv2', {'train': 2, 'valid': 1, 'test': 2}, 6, 25, 4, 177, sims_texts, (-1, 1), True)
    sims['valid']['vision'] = np.asfortranarray(sims['valid']['vision'])  # a Fortran-order split
    sims['valid']['vision_lengths'] = np.array(sims['valid']['vision_lengths'], dtype=np.int64)
    expected['sims-v2'] = finish_mmsa(sims, 1.0)
    dump('ch-simsv2s.pkl', sims, 4)

    # Bad MMSA inputs (one tiny split each).
    bad = {k: {kk: (vv[:1] if hasattr(vv, '__len__') and not isinstance(vv, str) else vv) for kk, vv in v.items()} for k, v in mosei.items()}
    bad['valid']['regression_labels'] = np.array([3.5], dtype=np.float32)
    dump('mosei_badlabel.pkl', bad, 4)
    nokey = {k: dict(v) for k, v in bad.items()}
    nokey['valid']['regression_labels'] = np.array([0.5], dtype=np.float32)
    del nokey['test']['vision_lengths']
    dump('mosei_nokey.pkl', nokey, 4)
    cplx = {'train': {'audio': np.ones((1, 2, 2), dtype=np.complex64)}}
    dump('mosei_complex.pkl', cplx, 4)

    # MSE-Adapter processed MELD: <name>_<split>.pkl, list of {features: {...}, label}.
    meld_labels = ['neutral', 'surprise', 'fear', 'sadness', 'joy', 'disgust', 'anger']
    os.makedirs(os.path.join(OUT, 'mse_meld'))
    expected['meld'] = {}
    meld_text = {
        'train': ['Oh my God!', 'Okay.', "I can't believe it."],
        'dev': ['Yeah, sure.', 'Get out!'],
        'test': ['Hi Ross.', 'What?!'],
    }
    for split, texts in meld_text.items():
        items, summ = [], {'labels': [], 'audioFrames': [], 'visionFrames': [], 'audioSums': [], 'visionSums': [], 'text': texts}
        cleaned = {'audio': 0, 'vision': 0}
        for i, t in enumerate(texts):
            a_len, v_len = int(rng.integers(1, 7)), int(rng.integers(1, 5))
            audio = features(1, 6, 64, [a_len])[0]
            video = features(1, 4, 64, [v_len])[0]
            if split == 'train' and i == 1:
                audio[0, 5] = np.nan
                video[0, 0] = -np.inf
            label = meld_labels[(i * 3 + len(split)) % 7]
            items.append({'features': {'text': t, 'audio': audio, 'video': video, 'audio_len': a_len, 'video_len': v_len}, 'label': label})
            summ['labels'].append(meld_labels.index(label))
            summ['audioFrames'].append(a_len)
            summ['visionFrames'].append(v_len)
            summ['audioSums'].append(float(np.where(np.isfinite(audio[:a_len]), audio[:a_len], 0).astype(np.float64).sum()))
            summ['visionSums'].append(float(np.where(np.isfinite(video[:v_len]), video[:v_len], 0).astype(np.float64).sum()))
            cleaned['audio'] += int((~np.isfinite(audio[:a_len])).sum())
            cleaned['vision'] += int((~np.isfinite(video[:v_len])).sum())
        summ['cleaned'] = cleaned
        expected['meld']['valid' if split == 'dev' else split] = summ
        dump(os.path.join('mse_meld', f'meld_{split}.pkl'), items, 4)
    bad_items = [{'features': {'text': 'x', 'audio': np.zeros((2, 64), np.float32), 'video': np.zeros((2, 64), np.float32), 'audio_len': 2, 'video_len': 2}, 'label': l}
                 for l in ['joy', 'happiness']]
    os.makedirs(os.path.join(OUT, 'mse_badlabel'))
    dump(os.path.join('mse_badlabel', 'meld_train.pkl'), bad_items, 4)

    # CHERMA original: {stage}.json + audio/ visual/ text/ <stage>/<id>.npy (LFMIM layout).
    labels_ch = ['愤怒', '厌恶', '恐惧', '高兴', '平静', '悲伤', '惊奇']
    root = os.path.join(OUT, 'cherma')
    expected['cherma'] = {}
    for stage, n in (('train', 3), ('valid', 2), ('test', 2)):
        entries, summ = [], {'ids': [], 'labels': [], 'labelsT': [], 'labelsA': [], 'labelsV': [], 'audioFrames': [], 'visionFrames': [], 'audioSums': [], 'visionSums': []}
        for i in range(n):
            uid = f'{stage}_{i:04d}'
            la, lv = int(rng.integers(2, 6)), int(rng.integers(1, 4))
            audio = rng.normal(size=(la, 16)).astype(np.float32)
            visual = rng.normal(size=(lv, 24)).astype(np.float32)
            text = rng.normal(size=(4, 8)).astype(np.float32)
            for sub, arr, suffix in (('audio', audio, '.npy'), ('visual', visual, '.mp4.npy'), ('text', text, '.npy')):
                os.makedirs(os.path.join(root, sub, stage), exist_ok=True)
                np.save(os.path.join(root, sub, stage, uid + suffix), arr)
            lab = [labels_ch[(i + k + n) % 7] for k in range(4)]
            entries.append({'audio_file': uid + '.wav', 'video_file': uid + '.mp4', 'txt_label': lab[0], 'audio_label': lab[1], 'visual_label': lab[2], 'video_label': lab[3]})
            summ['ids'].append(uid)
            summ['labels'].append(labels_ch.index(lab[3]))
            summ['labelsT'].append(labels_ch.index(lab[0]))
            summ['labelsA'].append(labels_ch.index(lab[1]))
            summ['labelsV'].append(labels_ch.index(lab[2]))
            summ['audioFrames'].append(la)
            summ['visionFrames'].append(lv)
            summ['audioSums'].append(float(audio.astype(np.float64).sum()))
            summ['visionSums'].append(float(visual.astype(np.float64).sum()))
        with open(os.path.join(root, f'{stage}.json'), 'w', encoding='utf-8') as f:
            json.dump(entries, f, ensure_ascii=False, indent=1)
        expected['cherma'][stage] = summ

    # Edge values: every dtype, both byte orders, C and Fortran order, scalars, big ints.
    edge = {
        'f64': rng.normal(size=(2, 3)),
        'i64': np.array([[-1, 2**40], [-2**40, 7]], dtype=np.int64),
        'i8': np.array([-128, 0, 127], dtype=np.int8),
        'u8': np.array([0, 200, 255], dtype=np.uint8),
        'i16': np.array([-30000, 5], dtype=np.int16),
        'i32': np.array([[-2**31, 2**31 - 1]], dtype=np.int32),
        'bool': np.array([True, False, True]),
        'fortran': np.asfortranarray(rng.normal(size=(3, 4, 2)).astype(np.float32)),
        'fortran_i64': np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        'be_f4': (np.arange(6).reshape(2, 3) / 4).astype('>f4'),
        'be_i8': np.array([-5, 2**33], dtype='>i8'),
        'ustr': np.array(['a', '中文', 'xyz😀']),
        'sbytes': np.array([b'ab', b'c']),
        'objstr': np.array(['x', 'yy', '名字'], dtype=object),
        'scalars': [np.float32(1.5), np.int64(-7), np.bool_(True), np.float64(-0.25)],
        'ints': [-1, -300, 2**40, -2**40, 255, 65536],
        'nested': {'t': (1, 2.5, None), 's': {3}, 'b': b'\x00\xff', 'f': float('inf')},
    }
    arrays = {k: v for k, v in edge.items() if isinstance(v, np.ndarray)}
    expected['edge'] = {
        k: {'shape': list(v.shape), 'descr': v.dtype.str,
            'values': [x.decode() if isinstance(x, bytes) else x for x in np.ascontiguousarray(v).ravel().tolist()]}
        for k, v in arrays.items()
    }
    for p in (0, 2, 4, 5):
        dump(f'edge_p{p}.pkl', edge, p)

    # Bad pickles.
    with open(os.path.join(OUT, 'mosei_unaligned_p4.pkl'), 'rb') as f:
        full = f.read()
    with open(os.path.join(OUT, 'truncated.pkl'), 'wb') as f:
        f.write(full[: len(full) // 2])
    expected['truncatedSize'] = len(full) // 2

    class Custom:  # pickled as GLOBAL '__main__ Custom' (protocol 2)
        pass
    Custom.__module__ = 'my_lab_utils'
    Custom.__qualname__ = 'Custom'
    sys.modules['my_lab_utils'] = sys.modules[__name__]
    globals()['Custom'] = Custom
    dump('custom_class.pkl', {'train': {'audio': Custom()}}, 2)

    class ShortArray:  # an ndarray state whose raw data is one byte short of (2, 3) float32
        def __reduce__(self):
            rec = getattr(np, '_core', np.core).multiarray._reconstruct
            return (rec, (np.ndarray, (0,), b'b'), (1, (2, 3), np.dtype('<f4'), False, b'\x00' * 23))
    dump('short_data.pkl', {'train': {'audio': ShortArray()}}, 4)

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return 'tensor-0' if isinstance(obj, str) and obj == 'external' else None
    with open(os.path.join(OUT, 'persid.pkl'), 'wb') as f:
        P(f, protocol=2).dump({'weights': 'external'})

    # .npy files: versions 1/2/3, byte orders, Fortran order, strings, object arrays.
    npy = os.path.join(OUT, 'npy')
    os.makedirs(npy)
    npys = {
        'f4_v1': (rng.normal(size=(3, 5)).astype(np.float32), (1, 0)),
        'be_f8_v2': (rng.normal(size=(4,)).astype('>f8'), (2, 0)),
        'fortran_i16_v1': (np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4) - 6), (1, 0)),
        'ustr_v3': (np.array(['猫', 'dog']), (3, 0)),
        'u8_v1': (np.array([[1, 2], [3, 250]], dtype=np.uint8), (1, 0)),
    }
    expected['npy'] = {}
    for name, (arr, version) in npys.items():
        with open(os.path.join(npy, name + '.npy'), 'wb') as f:
            np.lib.format.write_array(f, arr, version=version)
        expected['npy'][name] = {'shape': list(arr.shape), 'descr': arr.dtype.str, 'values': np.ascontiguousarray(arr).ravel().tolist()}
    obj = np.array(['a', 'bc'], dtype=object)
    np.save(os.path.join(npy, 'obj.npy'), obj, allow_pickle=True)
    expected['npy']['obj'] = {'shape': [2], 'descr': '|O', 'values': ['a', 'bc']}
    np.save(os.path.join(npy, 'complex.npy'), np.ones(3, dtype=np.complex128))
    with open(os.path.join(npy, 'f4_v1.npy'), 'rb') as f:
        whole = f.read()
    with open(os.path.join(npy, 'truncated.npy'), 'wb') as f:
        f.write(whole[:-10])

    with open(os.path.join(OUT, 'expected.json'), 'w', encoding='utf-8') as f:
        json.dump(expected, f, ensure_ascii=False, indent=1, allow_nan=False)
    total = sum(os.path.getsize(os.path.join(d, x)) for d, _, xs in os.walk(OUT) for x in xs)
    print(f'wrote fixtures to {os.path.normpath(OUT)} ({total} bytes)')


if __name__ == '__main__':
    main()
