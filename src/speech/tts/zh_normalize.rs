//! Mandarin text normalization: digits and symbols written the way they are read aloud, so the
//! phonemizer only ever sees Chinese characters, Latin letters and punctuation.
//!
//! - Amounts and counts are read as numbers: 128元 → 一百二十八元, 2个 → 两个, 3.5 → 三点五.
//! - Phone numbers and IDs are read digit by digit with 幺 for 1, as call-center agents read
//!   them (一 and 七 are easy to mix up on a phone line): runs of 7+ digits, runs starting
//!   with 0, hyphenated groups, and any digits right after a word such as 号码, 尾号 or 编号.
//! - Dates (2024-03-05, 2024年3月5日: the year digit by digit with 一), times (14:30 →
//!   十四点三十分), percentages (50% → 百分之五十), ranges (3-5天 → 三到五天), ¥ amounts.
//!
//! Sans-IO and deterministic; also used by the benchmark to put references and transcripts in
//! one form before counting character errors (whisper writes "128元" as often as "一百二十八元").

const DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
/// Words after which digits are an identifier, read one by one.
const ID_CUES: [&str; 13] = ["号码", "电话", "热线", "手机", "尾号", "编号", "单号", "卡号", "工号", "账号", "验证码", "密码", "号是"];
/// Measure words after which 2 is read 两 (两个, not 二个).
const LIANG_MEASURES: [char; 16] = ['个', '位', '张', '次', '种', '条', '台', '部', '家', '项', '天', '小', '周', '年', '倍', '份'];
/// Units that make a digit run an amount (never read digit by digit).
const AMOUNT_UNITS: [char; 8] = ['元', '块', '万', '亿', '角', '分', '兆', '%'];

/// `text` with every digit and number symbol spelled out in Chinese characters.
pub fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().map(fold_width).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            i = number(&chars, i, &mut out);
            continue;
        }
        match c {
            '¥' | '￥' if chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                let end = number(&chars, i + 1, &mut out);
                if chars.get(end) != Some(&'元') {
                    out.push('元');
                }
                i = end;
                continue;
            }
            '%' => out.push_str("百分之"), // a stray % with no number before it
            '&' => out.push('和'),
            '+' => out.push('加'),
            '~' | '～' => out.push('到'),
            '/' => out.push('每'),
            '@' => out.push_str("艾特"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Full-width digits, letters and signs as their ASCII forms.
fn fold_width(c: char) -> char {
    match c {
        '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ' | '％' | '：' | '－' | '．' | '／' | '＋' => {
            char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
        }
        _ => c,
    }
}

fn digits_at(chars: &[char], i: usize) -> usize {
    chars[i..].iter().take_while(|c| c.is_ascii_digit()).count()
}

fn value(chars: &[char]) -> u64 {
    chars.iter().fold(0u64, |v, c| v.saturating_mul(10).saturating_add(c.to_digit(10).unwrap_or(0) as u64))
}

/// Reads the number starting at `start` (a digit) into `out`; returns the index after it.
fn number(chars: &[char], start: usize, out: &mut String) -> usize {
    let n = digits_at(chars, start);
    let run = &chars[start..start + n];
    let after = start + n;
    let at = |k: usize| chars.get(k).copied();

    // 2024-03-05, 2024/3/5, 2024.3.5
    if n == 4 && matches!(at(after), Some('-' | '/' | '.')) {
        let sep = at(after);
        let m = if at(after + 1).is_some_and(|c| c.is_ascii_digit()) { digits_at(chars, after + 1) } else { 0 };
        let d_start = after + 1 + m + 1;
        if (1..=2).contains(&m) && at(after + 1 + m) == sep && d_start < chars.len() && chars[d_start].is_ascii_digit() {
            let d = digits_at(chars, d_start);
            if d <= 2 {
                year(run, out);
                out.push('年');
                out.push_str(&cardinal(value(&chars[after + 1..after + 1 + m])));
                out.push('月');
                out.push_str(&cardinal(value(&chars[d_start..d_start + d])));
                out.push('日');
                return d_start + d;
            }
        }
    }
    if n == 4 && at(after) == Some('年') {
        year(run, out);
        return after;
    }
    // 14:30, 9:05, 8:00:15
    if (1..=2).contains(&n) && at(after) == Some(':') && at(after + 1).is_some_and(|c| c.is_ascii_digit()) && digits_at(chars, after + 1) == 2 {
        let h = value(run);
        let m = value(&chars[after + 1..after + 3]);
        out.push_str(&cardinal(h).replace("二", if h == 2 { "两" } else { "二" }));
        out.push('点');
        if m > 0 {
            if m < 10 {
                out.push('零');
            }
            out.push_str(&cardinal(m));
            out.push('分');
        }
        let mut end = after + 3;
        if at(end) == Some(':') && at(end + 1).is_some_and(|c| c.is_ascii_digit()) && digits_at(chars, end + 1) == 2 {
            let s = value(&chars[end + 1..end + 3]);
            if s > 0 {
                out.push_str(&cardinal(s));
                out.push('秒');
            }
            end += 3;
        }
        return end;
    }
    // Phone numbers written in groups: 400-123-4567, 010-12345678, 138 0013 8000.
    let mut group_end = after;
    let mut groups = 1;
    let mut total = n;
    while matches!(at(group_end), Some('-' | ' ')) && at(group_end + 1).is_some_and(|c| c.is_ascii_digit()) {
        let g = digits_at(chars, group_end + 1);
        groups += 1;
        total += g;
        group_end += 1 + g;
    }
    if groups > 1 && total >= 7 {
        for (k, c) in chars[start..group_end].iter().enumerate() {
            if c.is_ascii_digit() {
                out.push(id_digit(*c));
            } else if k > 0 {
                out.push('，'); // a short pause between groups, as an agent reads them
            }
        }
        return group_end;
    }
    // A decimal part.
    let has_decimal = at(after) == Some('.') && at(after + 1).is_some_and(|c| c.is_ascii_digit());
    let end = if has_decimal { after + 1 + digits_at(chars, after + 1) } else { after };
    let unit = at(end);
    let is_amount = unit.is_some_and(|u| AMOUNT_UNITS.contains(&u));
    let cued = {
        let before: String = chars[start.saturating_sub(4)..start].iter().collect();
        ID_CUES.iter().any(|cue| before.ends_with(cue))
    };
    if !has_decimal && !is_amount && (cued || n >= 7 || (n >= 2 && run[0] == '0')) {
        run.iter().for_each(|&c| out.push(id_digit(c)));
        return after;
    }
    // 3-5天: a range between two counts.
    if unit == Some('%') {
        out.push_str("百分之");
    }
    if n > 12 {
        // Too long for a count (16 digits of a card): digit by digit.
        run.iter().for_each(|&c| out.push(id_digit(c)));
        return after;
    }
    let v = value(run);
    if v == 2 && !has_decimal && unit.is_some_and(|u| LIANG_MEASURES.contains(&u)) {
        out.push('两');
    } else {
        out.push_str(&cardinal(v));
    }
    if has_decimal {
        out.push('点');
        chars[after + 1..end].iter().for_each(|&c| out.push(DIGITS[c.to_digit(10).unwrap_or(0) as usize]));
    }
    let mut end = end;
    if unit == Some('%') {
        end += 1;
    }
    if matches!(at(end), Some('-' | '~' | '～')) && at(end + 1).is_some_and(|c| c.is_ascii_digit()) {
        out.push('到');
        end += 1;
    }
    end
}

/// A year is read digit by digit with 一 (二零二四), not 幺.
fn year(run: &[char], out: &mut String) {
    run.iter().for_each(|&c| out.push(DIGITS[c.to_digit(10).unwrap_or(0) as usize]));
}

/// A digit of a phone number or ID.
fn id_digit(c: char) -> char {
    match c {
        '1' => '幺',
        _ => DIGITS[c.to_digit(10).unwrap_or(0) as usize],
    }
}

/// The Chinese reading of `n`: 10 → 十, 110 → 一百一十, 1005 → 一千零五, 20000 → 二万.
pub fn cardinal(n: u64) -> String {
    if n == 0 {
        return "零".into();
    }
    // Groups of four digits, lowest first: units, 万, 亿, 万亿.
    let mut groups = Vec::new();
    let mut rest = n;
    while rest > 0 {
        groups.push(rest % 10_000);
        rest /= 10_000;
    }
    let mut out = String::new();
    let mut pending_zero = false;
    for (gi, &g) in groups.iter().enumerate().rev() {
        if g == 0 {
            pending_zero = !out.is_empty();
            continue;
        }
        if !out.is_empty() && (pending_zero || g < 1000) {
            out.push('零');
        }
        pending_zero = false;
        out.push_str(&group(g));
        out.push_str(["", "万", "亿", "万亿"][gi.min(3)]);
    }
    // 十五 and 十万, not 一十五 and 一十万, when the number starts with its tens.
    if out.starts_with("一十") {
        out.remove(0);
    }
    out
}

/// 1..=9999 without a group unit; a zero inside (1005) is read once as 零.
fn group(g: u64) -> String {
    let mut out = String::new();
    let mut zero = false;
    for (place, unit) in [(1000, "千"), (100, "百"), (10, "十"), (1, "")] {
        let d = (g / place) % 10;
        if d == 0 {
            zero = !out.is_empty();
            continue;
        }
        if zero {
            out.push('零');
            zero = false;
        }
        out.push(DIGITS[d as usize]);
        out.push_str(unit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinals_read_as_spoken() {
        for (n, s) in [
            (0, "零"),
            (7, "七"),
            (10, "十"),
            (15, "十五"),
            (20, "二十"),
            (110, "一百一十"),
            (128, "一百二十八"),
            (1005, "一千零五"),
            (10050, "一万零五十"),
            (100000, "十万"),
            (120000000, "一亿二千万"),
            (100000001, "一亿零一"),
        ] {
            assert_eq!(cardinal(n), s, "{n}");
        }
    }

    #[test]
    fn amounts_counts_and_decimals() {
        assert_eq!(normalize("128元"), "一百二十八元");
        assert_eq!(normalize("每月198元、50个G的套餐"), "每月一百九十八元、五十个G的套餐");
        assert_eq!(normalize("还剩3.2个G"), "还剩三点二个G");
        assert_eq!(normalize("2个人"), "两个人");
        assert_eq!(normalize("¥42.5"), "四十二点五元");
        assert_eq!(normalize("费用10000元"), "费用一万元");
        assert_eq!(normalize("3-5天"), "三到五天");
        assert_eq!(normalize("１２８元"), "一百二十八元");
    }

    #[test]
    fn phone_numbers_and_ids_digit_by_digit_with_yao() {
        assert_eq!(normalize("请拨打10086"), "请拨打一万零八十六"); // no cue, five digits: a number
        assert_eq!(normalize("客服电话10086"), "客服电话幺零零八六");
        assert_eq!(normalize("13800138000"), "幺三八零零幺三八零零零");
        assert_eq!(normalize("400-123-4567"), "四零零，幺二三，四五六七");
        assert_eq!(normalize("尾号1234的卡"), "尾号幺二三四的卡");
        assert_eq!(normalize("区号010"), "区号零幺零");
    }

    #[test]
    fn dates_times_and_percentages() {
        assert_eq!(normalize("2024年3月5日"), "二零二四年三月五日");
        assert_eq!(normalize("2024-03-05到期"), "二零二四年三月五日到期");
        assert_eq!(normalize("14:30开门"), "十四点三十分开门");
        assert_eq!(normalize("9:05"), "九点零五分");
        assert_eq!(normalize("8:00到20:00"), "八点到二十点");
        assert_eq!(normalize("2:00"), "两点");
        assert_eq!(normalize("打5折，降了50%"), "打五折，降了百分之五十");
        assert_eq!(normalize("3.5%"), "百分之三点五");
    }

    #[test]
    fn letters_and_plain_text_pass_through() {
        assert_eq!(normalize("5G网络和VIP服务"), "五G网络和VIP服务");
        assert_eq!(normalize("您好，欢迎致电。"), "您好，欢迎致电。");
        assert_eq!(normalize(""), "");
    }
}
